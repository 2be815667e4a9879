"""The fast generation path (generation.fast_path, rollouts.py) gives the same greedy tokens as plain
`model.generate`, token for token: tiny and hub-shaped models, with and without a merged LoRA adapter, with and
without the calculator; and it compiles one decoding graph for every pass of a stage.

More model folders (e.g. a real SmolLM2-135M-Instruct): FASTGEN_MODEL_DIRS=/path/a:/path/b (os.pathsep-separated).
"""

from __future__ import annotations

import copy
import os
import types
from pathlib import Path

import pytest

EXTRA_DIRS = [p for p in os.environ.get("FASTGEN_MODEL_DIRS", "").split(os.pathsep) if p]
MAX_NEW = 10


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    """name -> a saved model folder: the tiny default model, the hub-shaped fixture, and EXTRA_DIRS."""
    from conftest import test_params
    from gsm8k_pipeline import base_model
    from gsm8k_pipeline.synthetic import generate_splits
    from hub import build

    train, _ = generate_splits(200, 10, 0)
    model, tokenizer = base_model.build_tiny(train, test_params()["base_model"]["tiny"], seed=1, system=None)
    tiny = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(tiny)
    tokenizer.save_pretrained(tiny)
    return {"tiny": tiny, "hub": build(tmp_path_factory.mktemp("hub")), **{p: Path(p) for p in EXTRA_DIRS}}


def with_lora(model, seed: int = 0):
    """`model` with a random (non-zero) LoRA adapter on every linear of its attention and MLP: a PeftModel."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        init_lora_weights=False,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    return get_peft_model(model, config)


def load(folder: Path, lora: bool):
    """(model, tokenizer) as eval runs them (load_for_inference); with `lora`, a random adapter merged in."""
    from gsm8k_pipeline.loading import load_for_inference

    model, tokenizer = load_for_inference(folder)
    if lora:
        model = with_lora(model).merge_and_unload()
        model.eval()
    return model, tokenizer


def prompts(tokenizer) -> list[str]:
    """Chat prompts of different lengths; two end in a calculator call, so the calculator writes into them."""
    from gsm8k_pipeline.formatting import prompt_messages
    from gsm8k_pipeline.generation import render_prompts

    questions = [
        "How many?",
        "Tom has 3 apples and buys 4 more. How many apples does he have now?",
        "A train travels 60 km each hour for 3 hours, then 40 km. How far did it go?",
        "2+2?",
        "Mia reads 12 pages a day. How many pages in a week?",
        "Ann has 7 pens.",
    ]
    rendered = render_prompts(tokenizer, [prompt_messages(q, None) for q in questions])
    return rendered + [rendered[1] + "He has 3+4=<<3+4=", rendered[3] + "So 2*2=<<2*2="]


def reference(model, tokenizer, texts: list[str], processor=None) -> list[list[int]]:
    """Plain `model.generate`, greedy, one prompt at a time (no padding at all): new tokens up to the first stop."""
    import torch
    from transformers import LogitsProcessorList

    from gsm8k_pipeline.generation import first_stop

    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    out = []
    for text in texts:
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            ids = model.generate(
                **enc,
                do_sample=False,
                max_new_tokens=MAX_NEW,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                logits_processor=LogitsProcessorList([processor()] if processor else []),
            )
        new = ids[0, enc["input_ids"].shape[1] :].tolist()
        out.append(new[: first_stop(new, stops)])
    return out


def greedy(model, tokenizer, texts, fast: bool, processor=None, batch_size: int = 3) -> list[list[int]]:
    """generate_ids on either path, batched (8 prompts by 3: a short last batch), up to the first stop."""
    from gsm8k_pipeline.generation import first_stop, generate_ids

    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    out = generate_ids(
        model,
        ids,
        batch_size=batch_size,
        max_new_tokens=MAX_NEW,
        fast=fast,
        processor=processor,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    return [rows[0][: first_stop(rows[0], stops)] for rows in out]


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("name", ["tiny", "hub", *EXTRA_DIRS])
def test_fast_and_plain_paths_give_plain_generates_greedy_tokens(folders, name, lora):
    from gsm8k_pipeline.calculator import Calculator

    model, tokenizer = load(folders[name], lora)
    texts = prompts(tokenizer)
    want = reference(model, tokenizer, texts)
    assert greedy(model, tokenizer, texts, fast=False) == want
    assert greedy(model, tokenizer, texts, fast=True) == want
    calls = {}
    for path in ("reference", "plain", "fast"):
        calc = Calculator(tokenizer)
        got = (
            reference(model, tokenizer, texts, calc)
            if path == "reference"
            else greedy(model, tokenizer, texts, fast=path == "fast", processor=calc)
        )
        if path == "reference":
            want_calc = got
        assert got == want_calc, path
        calls[path] = calc.calls
    # The calculator wrote into the two calling prompts, and never into the fast path's filler rows.
    assert calls["reference"] == calls["plain"] == calls["fast"] >= 2
    assert want_calc != want


def test_text_generate_is_the_same_on_both_paths(folders):
    """generation.generate (what eval and traces call) decodes the same text either way."""
    from gsm8k_pipeline.generation import generate

    model, tokenizer = load(folders["hub"], lora=False)
    texts = prompts(tokenizer)
    plain = generate(model, tokenizer, texts, batch_size=3, max_new_tokens=MAX_NEW, fast=False)
    assert generate(model, tokenizer, texts, batch_size=3, max_new_tokens=MAX_NEW, fast=True) == plain


def test_fast_sampling_keeps_every_pass_at_batch_size_rows_and_records_timings(folders):
    import torch

    from gsm8k_pipeline.calculator import Calculator
    from gsm8k_pipeline.generation import generate

    model, tokenizer = load(folders["tiny"], lora=False)
    texts = prompts(tokenizer)
    record, calc = [], Calculator(tokenizer)
    torch.manual_seed(0)
    out = generate(
        model,
        tokenizer,
        texts,
        batch_size=6,
        max_new_tokens=MAX_NEW,
        do_sample=True,
        num_return_sequences=3,
        processor=calc,
        fast=True,
        record=record,
        desc="sampled",
    )
    assert [len(c) for c in out] == [3] * len(texts)
    assert all(c.startswith("7>>") for c in out[-2]) and all(c.startswith("4>>") for c in out[-1])
    [timing] = record
    assert timing["rows_per_batch"] == 6 and timing["batches"] == 4 and timing["problems"] == len(texts)
    assert timing["new_tokens"] > 0 and timing["first_batch_seconds"] > 0 and timing["warmup_seconds"] is not None


def test_one_compiled_decoding_graph_serves_every_pass(folders, monkeypatch):
    """Compiled (here on the CPU, dynamo's eager backend): greedy, calculator and sampled passes, uneven last
    batches and a different prompt set all replay one graph; the tokens stay plain generate's."""
    import torch
    from torch._dynamo.utils import counters
    from transformers import CompileConfig

    from gsm8k_pipeline import generation
    from gsm8k_pipeline.calculator import Calculator

    monkeypatch.setattr(CompileConfig, "_compile_all_devices", True)  # transformers compiles on GPUs only
    monkeypatch.setattr(generation, "COMPILE", {"backend": "eager", "mode": None})
    model, tokenizer = load(folders["hub"], lora=True)
    texts = prompts(tokenizer)
    want = reference(model, tokenizer, texts)
    torch._dynamo.reset()
    counters.clear()
    assert greedy(model, tokenizer, texts, fast=True, batch_size=4) == want
    greedy(model, tokenizer, texts[:5], fast=True, batch_size=4, processor=Calculator(tokenizer))
    generation.generate(
        model, tokenizer, texts, batch_size=4, max_new_tokens=MAX_NEW, do_sample=True, num_return_sequences=2, fast=True
    )
    assert counters["stats"]["unique_graphs"] == 1
    torch._dynamo.reset()


def test_rollouts_sample_from_a_merged_copy_refreshed_in_place(folders):
    """GRPO's fast rollouts: the copy's weights are exactly the policy's merge, rewritten in the same tensors
    after an update; its greedy tokens are the policy's; completions come back as TRL expects them."""
    import torch

    from gsm8k_pipeline.formatting import prompt_messages
    from gsm8k_pipeline.generation import first_stop, generate_ids
    from gsm8k_pipeline.loading import load_for_inference
    from gsm8k_pipeline.rollouts import Rollouts

    model, tokenizer = load_for_inference(folders["hub"])
    policy = with_lora(model)
    policy.train()
    rollouts = Rollouts(tokenizer, precision="float32", max_new_tokens=MAX_NEW, temperature=1.0, prompt_length=0)

    def check():
        copy_ = rollouts.refresh(policy)
        merged = copy.deepcopy(policy).merge_and_unload()
        ref = dict(merged.named_parameters())
        assert all(torch.equal(p, ref[n]) for n, p in copy_.named_parameters())
        return copy_

    first = check()
    pointers = [p.data_ptr() for p in first.parameters()]
    with torch.no_grad():  # an optimiser step on the adapter
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 0.1)
    second = check()
    assert second is first and [p.data_ptr() for p in second.parameters()] == pointers

    texts = prompts(tokenizer)
    policy.eval()
    want = reference(policy, tokenizer, texts)  # the PeftModel itself, adapter unmerged
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    got = generate_ids(
        second,
        ids,
        batch_size=8,
        max_new_tokens=MAX_NEW,
        fast=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    assert [r[0][: first_stop(r[0], stops)] for r in got] == want

    conversations = [prompt_messages(q, "Be brief.") for q in ("How many?", "Tom has 3 apples. How many?")] * 2
    out = rollouts(conversations, types.SimpleNamespace(model=policy))
    assert out["logprobs"] is None and len(out["completion_ids"]) == 4
    assert (
        out["prompt_ids"]
        == tokenizer.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
    )
    for ids in out["completion_ids"]:
        assert 0 < len(ids) <= MAX_NEW and (tokenizer.eos_token_id not in ids or ids[-1] == tokenizer.eos_token_id)
    assert rollouts.timings[-1]["sequences"] == 4


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_grpo_trains_with_the_fast_rollouts(tmp_path, monkeypatch, lora):
    """train_grpo on the fast path (forced on the CPU): TRL takes its rollouts from Rollouts and trains."""
    from conftest import test_params
    from gsm8k_pipeline import base_model, generation, train_grpo
    from gsm8k_pipeline.fileio import atomic_write_jsonl
    from gsm8k_pipeline.synthetic import generate_splits

    monkeypatch.setattr(generation, "FAST", True)
    monkeypatch.chdir(tmp_path)
    params = test_params()
    params["run"] = {"samples": 4, "output_dir": None}
    params["lora"]["enabled"] = lora
    train, _ = generate_splits(200, 10, 0)
    atomic_write_jsonl(Path("data/gsm8k/train.jsonl"), train)
    model, tokenizer = base_model.build_tiny(train, params["base_model"]["tiny"], seed=1, system=None)
    model.save_pretrained("base")
    tokenizer.save_pretrained("base")
    seen = []
    original = train_grpo.fast_rollouts

    def spy(*a, **kw):
        seen.append(original(*a, **kw))
        return seen[-1]

    monkeypatch.setattr(train_grpo, "fast_rollouts", spy)
    train_grpo.main(params, train_grpo.GRPOStageConfig(output_dir=Path("grpo"), base_model=Path("base")))
    assert (tmp_path / "grpo/model" / ("adapter_model.safetensors" if lora else "model.safetensors")).exists()
    [rollouts] = seen
    steps = params["grpo"]["epochs"] * 4 // params["grpo"]["prompts_per_step"]
    assert len(rollouts.timings) == steps
    assert all(
        t["sequences"] == params["grpo"]["prompts_per_step"] * params["grpo"]["num_generations"]
        for t in rollouts.timings
    )
