"""lm-evaluation-harness's GSM8K in the eval stage (src/gsm8k_pipeline/harness.py): offline on the local
splits, both filters, the chat variant, only the selected models, adapters, shots cut to fit the context,
and the leaderboard's table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from conftest import run, test_params
from gsm8k_pipeline import PipelineError, harness, selected
from gsm8k_pipeline.task import read_jsonl

N_TEST = test_params()["data"]["synthetic"]["n_test"]


def write_params(folder: Path, **lm_eval) -> Path:
    params = test_params()
    params["lm_eval"] |= lm_eval
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """Test-sized data and the tiny base model (512-token context), made by the pipeline's own commands."""
    root = tmp_path_factory.mktemp("harness")
    write_params(root)
    run(["gsm8k", "download"], root)
    run(["gsm8k", "base-model"], root)
    return root


def evaluate(root: Path, model: str, output_file: str, *extra: str) -> dict:
    """`gsm8k evaluate` as the DAG runs it, offline (as Hugging Face's libraries understand it) and with an
    empty Hugging Face cache: only local files can work."""
    cmd = [
        "gsm8k",
        "evaluate",
        "--model-path",
        model,
        "--output-dir",
        "metrics/eval",
        "--output-file",
        output_file,
        *extra,
    ]
    proc = subprocess.run(
        cmd,
        cwd=root,
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HOME": str(root / "hf_home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "metrics/eval" / output_file).read_text())


def test_selection_is_by_glob_on_model_ids():
    assert selected("grpo_64_s0", ["prep_sft", "grpo_*"])
    assert selected("prep_sft", ["prep_sft", "grpo_*"])
    assert not selected("full_sft_64_s0", ["prep_sft", "grpo_*"])
    assert not selected("prep_sft", [])


def test_the_local_task_is_lm_evals_gsm8k_on_the_local_files(tmp_path):
    """Same prompt, filters and metric as lm-eval's own gsm8k task; documents from our test file, few-shot
    examples from our train file."""
    from lm_eval.tasks import TaskManager

    rows = [{"question": f"Q{i}: 1 + {i}?", "answer": f"1+{i}={1 + i}\n#### {1 + i}"} for i in range(5)]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[3:]))
    config = harness.task_config(tmp_path / "test.jsonl", tmp_path / "train.jsonl")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / f"{harness.TASK}.yaml").write_text(yaml.safe_dump(config))
    task = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False).load([harness.TASK])["tasks"][
        harness.TASK
    ]
    assert [d["question"] for d in task.test_docs()] == ["Q0: 1 + 0?", "Q1: 1 + 1?", "Q2: 1 + 2?"]
    assert [d["question"] for d in task.fewshot_docs()] == ["Q3: 1 + 3?", "Q4: 1 + 4?"]
    assert task.doc_to_text(rows[0]) == "Question: Q0: 1 + 0?\nAnswer:"
    assert [f["name"] for f in config["filter_list"]] == list(harness.FILTERS)
    assert config["num_fewshot"] == 5 and config["metric_list"][0]["metric"] == "exact_match"


def test_the_config_digest_is_the_same_wherever_the_files_are(tmp_path):
    """The engines run in different folders (and lm-eval's task YAML sits in a fresh temp folder each run):
    the same task must get the same digest, and another task config another one."""
    from lm_eval.tasks import TaskManager

    row = json.dumps({"question": "1 + 1?", "answer": "1+1=2\n#### 2"}) + "\n"
    digests = []
    for name in ("a", "b"):
        folder = tmp_path / name
        (folder / "tasks").mkdir(parents=True)
        for split in ("test", "train"):
            (folder / f"{split}.jsonl").write_text(row)
        config = harness.task_config(folder / "test.jsonl", folder / "train.jsonl")
        (folder / "tasks" / f"{harness.TASK}.yaml").write_text(yaml.safe_dump(config))
        task = TaskManager(include_path=str(folder / "tasks"), include_defaults=False).load([harness.TASK])["tasks"][
            harness.TASK
        ]
        digests.append(harness.config_digest(task.dump_config()))
    assert digests[0] == digests[1]
    task.set_config(key="num_fewshot", value=3)
    assert harness.config_digest(task.dump_config()) != digests[0]


def test_evaluate_runs_the_harness_offline_with_both_filters_and_the_chat_variant(checkout):
    write_params(checkout, models=["base"], chat=True, num_fewshot=1)
    m = evaluate(checkout, "models/base/model", "base.json", "--samples", "5")
    clock = json.loads((checkout / "metrics/eval/base/timings.json").read_text())
    h = m["lm_eval"]
    assert h["version"] == version("lm_eval") and h["task_version"] == 3.0
    assert h["limit"] == 5 and h["context_length"] == 512 and h["max_gen_toks"] == 16
    assert set(h["variants"]) == {"fewshot", "chat"}
    for name, v in h["variants"].items():
        assert v["apply_chat_template"] == v["fewshot_as_multiturn"] == (name == "chat")
        for f in ("strict_match", "flexible_extract"):
            assert 0 <= v[f]["accuracy"] <= 1 and v[f]["stderr"] >= 0
        assert v["n"] == 5  # the first --samples problems, as our own accuracy's
        assert v["num_fewshot_used"] == v["num_fewshot_requested"] == 1 and v["note"] is None
        assert len(v["task_hash"]) == 64 and len(v["config_digest"]) == 16
        assert isinstance(v["example_response"], str) and "seconds" not in v  # a timing, kept apart:
        assert clock["lm_eval"]["variants"][name]["seconds"] > 0  # in the eval's timings.json
    # The chat template changes every prompt, so the task hash (documents, prompts, targets) differs.
    assert h["variants"]["fewshot"]["task_hash"] != h["variants"]["chat"]["task_hash"]
    assert m["n"] == 5 and "accuracy" in m  # our own numbers are still there


def test_the_harness_runs_on_the_whole_local_test_split_when_nothing_caps_it(checkout, tmp_path):
    """limit null and eval.samples null: n is the number of rows of the local test file."""
    params = yaml.safe_load((checkout / "params.yaml").read_text())
    params["eval"]["samples"] = None
    params["lm_eval"] |= {"models": ["*"], "chat": False, "limit": None, "num_fewshot": 0, "max_gen_toks": 4}
    (checkout / "whole.yaml").write_text(yaml.safe_dump(params))
    m = evaluate(checkout, "models/base/model", "whole.json", "--params", "whole.yaml")
    rows = len(read_jsonl(checkout / "data/gsm8k/test.jsonl"))
    assert rows == N_TEST and m["lm_eval"]["variants"]["fewshot"]["n"] == rows
    assert set(m["lm_eval"]["variants"]) == {"fewshot"}


def test_a_model_not_selected_gets_no_harness_run(checkout):
    write_params(checkout, models=["grpo_*"])
    m = evaluate(checkout, "models/base/model", "base_unselected.json")
    assert "lm_eval" not in m and m["n"] == 12


@pytest.fixture(scope="module")
def loaded(checkout):
    from gsm8k_pipeline.loading import load_for_inference

    return load_for_inference(checkout / "models/base/model")


def test_shots_are_cut_to_the_most_that_fit_the_context(checkout, loaded, monkeypatch):
    """lm-eval would cut an overlong prompt from the left without a word; instead the run uses the most
    shots at which every prompt fits, and says so."""
    model, tokenizer = loaded
    params = test_params(lm_eval={"models": ["base"], "chat": False, "num_fewshot": 5, "max_gen_toks": 300})
    monkeypatch.chdir(checkout)
    h = harness.run(model, tokenizer, params, "base", Path("data/gsm8k/test.jsonl"), Path("data/gsm8k/train.jsonl"))
    v = h["variants"]["fewshot"]
    used = v["num_fewshot_used"]
    assert used < 5 and v["num_fewshot_requested"] == 5
    assert v["note"].startswith("5-shot prompts do not fit the model's context of 512 tokens")
    assert v["max_prompt_tokens"] + 300 <= 512
    # The most that fit: one more shot would not.
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    config = harness.task_config(Path("data/gsm8k/test.jsonl"), Path("data/gsm8k/train.jsonl"))
    include = checkout / "tasks"
    include.mkdir(exist_ok=True)
    (include / f"{harness.TASK}.yaml").write_text(yaml.safe_dump(config))
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=6)
    task = TaskManager(include_path=str(include), include_defaults=False).load([harness.TASK])["tasks"][harness.TASK]
    assert harness.longest_prompt(lm, task, harness.VARIANTS["fewshot"], used + 1, 12) + 300 > 512


def test_a_context_too_short_for_any_prompt_is_a_clear_error(checkout, loaded, monkeypatch):
    model, tokenizer = loaded
    params = test_params(lm_eval={"models": ["base"], "max_gen_toks": 510})
    monkeypatch.chdir(checkout)
    with pytest.raises(PipelineError, match="exceeds the model's context of 512 tokens; lower lm_eval.max_gen_toks"):
        harness.run(model, tokenizer, params, "base", Path("data/gsm8k/test.jsonl"), Path("data/gsm8k/train.jsonl"))


def test_an_adapter_model_runs_through_evaluate(checkout, tmp_path):
    """A LoRA adapter on the hub-shaped model (Qwen2, ChatML, 2048-token context), as a budgeted run's."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gsm8k_pipeline.adapters import record_base
    from hub import build

    base = build(checkout / "models/hub_base")
    adapter = checkout / "models/grpo/8/s0/model"
    peft = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    peft.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter)
    record_base(adapter, base)
    write_params(checkout, models=["grpo_*"], chat=True, num_fewshot=5, max_gen_toks=8)
    m = evaluate(checkout, str(adapter), "grpo_8_s0.json", "--samples", "3")
    h = m["lm_eval"]
    assert h["context_length"] == 2048
    assert {v["n"] for v in h["variants"].values()} == {3}
    assert {v["num_fewshot_used"] for v in h["variants"].values()} == {5}  # 2048 tokens hold 5 shots
    shutil.rmtree(checkout / "models/grpo")


def test_the_leaderboard_shows_lm_evals_numbers_beside_ours(tmp_path):
    from gsm8k_pipeline.leaderboard import main
    from test_leaderboard import PARAMS, plant

    config = plant(tmp_path, lambda model_id: [1, 0, 1, 1])  # our accuracy 75 % everywhere
    variant = {
        "apply_chat_template": False,
        "fewshot_as_multiturn": False,
        "num_fewshot_requested": 5,
        "num_fewshot_used": 1,
        "note": "5-shot prompts do not fit",
        "max_prompt_tokens": 290,
        "strict_match": {"accuracy": 0.0, "stderr": 0.0},
        "flexible_extract": {"accuracy": 0.5, "stderr": 0.25},
        "n": 4,
        "task_hash": "ab" * 32,
        "config_digest": "cd" * 8,
        "example_response": "x",
        "seconds": 9.5,
    }
    chat = variant | {
        "apply_chat_template": True,
        "fewshot_as_multiturn": True,
        "note": None,
        "strict_match": {"accuracy": 0.25, "stderr": None},
    }
    path = config.eval_dir / "prep_sft.json"
    path.write_text(
        json.dumps(
            json.loads(path.read_text())
            | {
                "lm_eval": {
                    "version": "0.4.13",
                    "task_version": 3.0,
                    "variants": {"chat": chat, "fewshot": variant},
                    "seconds": 20.0,
                }
            }
        )
    )
    main(PARAMS, config)
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    section = board[board.index("## lm-evaluation-harness") :]
    assert "| prep_sft | 75.0 % | fewshot | 1 (5) | 0.0 ± 0.0 | 50.0 ± 25.0 | 4 |" in section
    assert "| prep_sft | 75.0 % | chat | 1 (5) | 25.0 | 50.0 ± 25.0 | 4 |" in section
    assert section.index("| fewshot |") < section.index("| chat |")  # lm-eval's standard protocol first
    assert "- prep_sft, fewshot: 5-shot prompts do not fit." in section
    assert "| base |" not in section  # no lm-eval run, no row
    out = json.loads((config.out_dir / "all.json").read_text())
    assert list(out["lm_eval"]) == ["prep_sft"]
    assert out["lm_eval"]["prep_sft"]["variants"]["fewshot"] == {
        "apply_chat_template": False,
        "num_fewshot_requested": 5,
        "num_fewshot_used": 1,
        "strict_match": {"accuracy": 0.0, "stderr": 0.0},
        "flexible_extract": {"accuracy": 0.5, "stderr": 0.25},
        "n": 4,
        "task_hash": "ab" * 32,
        "config_digest": "cd" * 8,
    }  # no timings: they differ run to run
