"""The real experiment (configs/gpu.yaml) is one switch away: it validates and dry-runs here, in both
engines, and fails clearly only where the hub or a GPU is really needed."""

import pytest
import yaml

from conftest import REPO, make_checkout, run
from engines import dvc_stale, snakemake_plan
from gsm8k_pipeline import params

GPU = REPO / "configs" / "gpu.yaml"


def test_gpu_config_validates():
    p = params.load(GPU)
    assert p["lora"]["enabled"] and p["data"]["source"] == "hf" and p["base_model"]["revision"]


def test_snakemake_dry_run_uses_the_gpu_params_file(tmp_path):
    repo = make_checkout(tmp_path / "repo", yaml.safe_load((REPO / "params.yaml").read_text()))
    jobs = snakemake_plan(repo, "--configfile", "configs/gpu.yaml")
    assert {f"grpo@{b}-{s}" for b in (256, 512, 1024, 2048) for s in (0, 1, 2)} <= jobs
    printed = run(["snakemake", "-n", "-p", "--cores", "1", "--configfile", "configs/gpu.yaml"], repo).stdout
    # Every job reads the params Snakemake itself planned with: params.yaml overlaid with configs/gpu.yaml
    # (Snakemake merges mappings, so the unused base_model.tiny of params.yaml stays).
    files = {line.split("--params ")[1].split()[0] for line in printed.splitlines() if "--params " in line}
    assert len(files) == 1
    used, gpu = params.load(repo / files.pop()), params.load(GPU)
    assert {k: v for k, v in used.items() if k != "base_model"} == {k: v for k, v in gpu.items() if k != "base_model"}
    assert used["base_model"] == gpu["base_model"] | {"tiny": params.load(REPO / "params.yaml")["base_model"]["tiny"]}


def test_dvc_status_with_the_gpu_params(tmp_path):
    repo = make_checkout(tmp_path / "repo", yaml.safe_load(GPU.read_text()))
    stale = dvc_stale(repo)
    assert {"download", "base_model", "prep_sft", "grpo@2048-2", "eval_budget@full_sft-2048-0"} <= stale


@pytest.mark.parametrize("command, message", [
    ("download", "hub unreachable: could not load openai/gsm8k (config main, revision e53f0488"),
    ("base-model", "hub unreachable: could not load Qwen/Qwen2.5-0.5B-Instruct@7ae55760"),
])
def test_stages_fail_clearly_where_the_hub_is_needed(tmp_path, command, message):
    """HF_HUB_OFFLINE=1 gives the unreachable hub's failure at once instead of after network retries."""
    import os
    import subprocess

    proc = subprocess.run(["gsm8k", command, "--params", str(GPU), "--out-dir", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "out").exists()
