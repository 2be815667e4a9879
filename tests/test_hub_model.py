"""A hub-shaped model (Qwen2, ChatML, format tags not in the vocabulary, sampling/penalty generation_config,
bf16 on disk, with and without a pad token) through the stages' own code: decoding is params', not the
checkpoint's; LoRA stages really train; adapters load from anywhere and refuse another base."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import test_params
from gsm8k_pipeline import PipelineError
from gsm8k_pipeline.formatting import FORMAT_TOKENS, prompt_messages
from hub import build


@pytest.fixture(scope="module", params=[True, False], ids=["pad", "no_pad"])
def fixture_model(request, tmp_path_factory):
    return build(tmp_path_factory.mktemp("hub") / "model", pad=request.param), request.param


def test_the_fixture_is_hub_shaped(fixture_model):
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    path, pad = fixture_model
    tok = AutoTokenizer.from_pretrained(path)
    assert AutoConfig.from_pretrained(path).model_type == "qwen2"
    assert all(tag not in tok.get_vocab() for tag in FORMAT_TOKENS)
    assert tok.apply_chat_template(prompt_messages("Q?", None), tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    gen = GenerationConfig.from_pretrained(path)
    assert (gen.do_sample, gen.top_k, gen.repetition_penalty) == (True, 20, 1.1)
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}
    assert (tok.pad_token is not None) == pad


def argmax_decode(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """Plain greedy decoding by hand: one prompt, no padding, no cache, no logits processors."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            if nxt == tokenizer.eos_token_id:
                break
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return tokenizer.decode(new, skip_special_tokens=True)


def test_eval_decoding_is_the_plain_greedy_decode(fixture_model, tmp_path):
    from transformers import GenerationConfig

    from gsm8k_pipeline.generation import generate, render_prompts
    from gsm8k_pipeline.loading import load_for_inference

    # A stronger penalty than the hub's 1.1, so that the checkpoint's decoding visibly differs from greedy
    # on a random model (whose argmax margins 1.1 rarely flips).
    path = tmp_path / "model"
    shutil.copytree(fixture_model[0], path)
    config = json.loads((path / "generation_config.json").read_text())
    (path / "generation_config.json").write_text(json.dumps({**config, "repetition_penalty": 5.0}))
    model, tok = load_for_inference(path)
    questions = ["Tom has 3 apples and buys 4 more. How many?", "What is 12 + 30?", "A box holds 6 eggs; 5 boxes?"]
    prompts = render_prompts(tok, [prompt_messages(q, None) for q in questions])
    batched = [c[0] for c in generate(model, tok, prompts, batch_size=3, max_new_tokens=12)]
    assert batched == [argmax_decode(model, tok, p, 12) for p in prompts]
    # The checkpoint's own settings would decode differently: the comparison above can fail.
    enc = tok(prompts[:1], return_tensors="pt", add_special_tokens=False)
    checkpoint = GenerationConfig.from_pretrained(path)
    checkpoint.update(do_sample=False, max_new_tokens=12)
    penalised = model.generate(**enc, generation_config=checkpoint)
    assert tok.decode(penalised[0, enc["input_ids"].shape[1] :], skip_special_tokens=True) != batched[0]


def train_stage(tmp_path, base, out, params, stage="prep"):
    from gsm8k_pipeline.train_sft import SFTStageConfig, main

    eight = {**params, "prep_sft": {**params["prep_sft"], "samples": 8}, "run": {"samples": 8, "output_dir": None}}
    main(eight, SFTStageConfig(stage=stage, output_dir=out, base_model=base, train_file=tmp_path / "train.jsonl"))
    return out / "model"


@pytest.fixture(scope="module")
def lora_run(fixture_model, tmp_path_factory):
    """prep_sft then full_sft with LoRA on, one optimiser step each (batch 8 = the 8 examples)."""
    from gsm8k_pipeline.fileio import atomic_write_jsonl
    from gsm8k_pipeline.synthetic import generate_splits

    tmp = tmp_path_factory.mktemp("lora")
    atomic_write_jsonl(tmp / "train.jsonl", generate_splits(40, 4, 1)[0])
    base = tmp / "models/base/model"
    shutil.copytree(fixture_model[0], base)
    params = test_params(
        lora={"enabled": True, "r": 4, "alpha": 8},
        prep_sft={"batch_size": 8, "learning_rate": 1e-2},
        full_sft={"batch_size": 8, "learning_rates": [1e-2]},
    )
    prep = train_stage(tmp, base, tmp / "models/prep_sft", params)
    full = train_stage(tmp, prep, tmp / "models/full_sft", params, stage="full")
    return tmp, base, prep, full


def adapter_weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_one_step_lora_stages_train(lora_run):
    import pandas as pd
    import torch

    _, _, prep, full = lora_run
    a, b = adapter_weights(prep), adapter_weights(full)
    lora_b = [k for k in a if "lora_B" in k]
    assert lora_b and all(a[k].abs().sum() > 0 for k in lora_b)  # PEFT starts B at zero: it moved
    assert any(not torch.equal(a[k], b[k]) for k in a)  # full_sft trained prep's adapter further
    steps = pd.read_csv(prep.parent / "train_log.csv").dropna(subset=["loss"])
    assert len(steps) == 1 and (steps["grad_norm"] > 0).all()


def test_adapters_load_from_any_directory_and_refuse_another_base(lora_run, tmp_path, monkeypatch):
    from gsm8k_pipeline.loading import load_for_inference

    root, base, _, full = lora_run
    monkeypatch.chdir(tmp_path)  # not the checkout: PEFT's relative base path would not resolve here
    model, _ = load_for_inference(full)
    assert model.config.model_type == "qwen2"
    # Another checkout whose base is a different model: refused, not silently loaded.
    other = tmp_path / "other"
    shutil.copytree(root / "models", other / "models")
    build(other / "models/base/model.new", pad=True)
    (other / "models/base/model.new/config.json").write_text(
        (other / "models/base/model.new/config.json")
        .read_text()
        .replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05')
    )
    shutil.rmtree(other / "models/base/model")
    (other / "models/base/model.new").rename(other / "models/base/model")
    with pytest.raises(PipelineError, match="adapter trained on base sha256 .* holds a different model"):
        load_for_inference(other / "models/full_sft/model")


def test_full_fine_tuning_keeps_float32_weights(fixture_model, tmp_path):
    """A bf16 checkpoint is trained in float32 master weights: a small step changes most weights."""
    from safetensors.torch import load_file

    from gsm8k_pipeline.fileio import atomic_write_jsonl
    from gsm8k_pipeline.synthetic import generate_splits

    atomic_write_jsonl(tmp_path / "train.jsonl", generate_splits(40, 4, 1)[0])
    params = test_params(prep_sft={"batch_size": 8, "learning_rate": 5e-6})
    out = train_stage(tmp_path, fixture_model[0], tmp_path / "prep", params)
    before, after = load_file(str(fixture_model[0] / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert {str(t.dtype) for t in after.values()} == {"torch.float32"}
    changed = sum(int((after[k] != before[k].float()).sum()) for k in after)
    assert changed / sum(t.numel() for t in after.values()) > 0.5
