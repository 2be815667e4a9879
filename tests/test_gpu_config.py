"""The real experiment (configs/gpu.yaml) is one switch away: it validates and dry-runs here, in both
engines, and fails clearly only where the hub or a GPU is really needed. Its file holds only what differs
from params.yaml: Snakemake overlays it (`--configfile`), DVC runs what `gsm8k params merge` writes."""

import subprocess

import pytest
import yaml

from conftest import REPO, make_checkout, run
from engines import dvc_stages, dvc_stale, snakemake_jobs, snakemake_plan
from gsm8k_pipeline import PipelineError, params
from gsm8k_pipeline.cli.params import load, merge

GPU = REPO / "configs" / "gpu.yaml"
SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("config", ["gpu.yaml", "smollm2.yaml"])
def test_configs_hold_only_what_differs_and_validate_over_params_yaml(config):
    def unchanged(over: dict, base: dict, at: str = "") -> list[str]:
        """Keys of the overlay that set params.yaml's own value."""
        return [
            key
            for k, v in over.items()
            for key in (
                unchanged(v, base[k], f"{at}{k}.") if isinstance(v, dict) else [f"{at}{k}"] if v == base[k] else []
            )
        ]

    assert unchanged(yaml.safe_load((REPO / "configs" / config).read_text()), SHIPPED) == []
    load(REPO / "configs" / config, REPO / "params.yaml")


def test_gpu_config_validates():
    p = load(GPU, REPO / "params.yaml")
    assert p["lora"]["enabled"] and p["data"]["source"] == "hf" and p["base_model"]["revision"]
    assert p["grpo"]["num_generations"] == SHIPPED["grpo"]["num_generations"]  # a knob it leaves alone


def test_both_engines_run_the_gpu_overlay_the_same_way(tmp_path):
    """Snakemake with --configfile on the shipped params.yaml; DVC on what `gsm8k params merge` wrote: the
    same jobs, inputs, outputs, params and commands, and every job reads the same params."""
    smk = make_checkout(tmp_path / "smk", SHIPPED)
    dvc = make_checkout(tmp_path / "dvc", SHIPPED)
    run(["gsm8k", "params", "merge", "configs/gpu.yaml"], dvc)
    jobs, stages = snakemake_jobs(smk, "--configfile", "configs/gpu.yaml"), dvc_stages(dvc)
    assert sorted(jobs) == sorted(stages)
    assert {f"grpo@{b}-{s}" for b in (256, 512, 1024, 2048) for s in (0, 1, 2)} <= set(jobs)
    for name in jobs:
        for field in ("inputs", "outputs", "params", "cmd"):
            assert jobs[name][field] == stages[name][field], (name, field)
    printed = run(["snakemake", "-n", "-p", "--cores", "1", "--configfile", "configs/gpu.yaml"], smk).stdout
    files = {line.split("--params ")[1].split()[0] for line in printed.splitlines() if "--params " in line}
    assert len(files) == 1  # every job reads the params Snakemake itself planned with
    assert params.load(smk / files.pop()) == params.load(dvc / "params.yaml") == load(GPU, REPO / "params.yaml")
    assert {"download", "base_model", "prep_sft", "grpo@2048-2", "eval_budget@full_sft-2048-0"} <= dvc_stale(dvc)
    assert {"grpo@2048-2", "eval_budget@full_sft-2048-0"} <= snakemake_plan(smk, "--configfile", "configs/gpu.yaml")


def test_merge_starts_from_the_committed_params_and_keeps_local_edits(tmp_path):
    repo = make_checkout(tmp_path / "repo", SHIPPED)
    path = repo / "params.yaml"
    merge(repo / "configs/gpu.yaml", path)
    merge(repo / "configs/smollm2.yaml", path)  # overlays don't pile up: committed params + smollm2 only
    assert params.load(path) == load(REPO / "configs/smollm2.yaml", REPO / "params.yaml")
    assert params.load(path)["base_model"]["revision"] is None  # gpu.yaml's revision is gone
    path.write_text(path.read_text().replace("threads: 4", "threads: 6"))  # an edit of the user's
    with pytest.raises(PipelineError, match="params.yaml has edits that are not committed"):
        merge(repo / "configs/gpu.yaml", path)
    assert "threads: 6" in path.read_text()
    proc = run(["gsm8k", "params", "merge", "configs/gpu.yaml"], repo, check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    run(["gsm8k", "params", "merge", "configs/gpu.yaml", "--force"], repo)
    assert params.load(path)["threads"] == 8


@pytest.mark.parametrize(
    "command, message",
    [
        ("download", "hub unreachable: could not load openai/gsm8k (config main, revision e53f0488"),
        ("base-model", "hub unreachable: could not load Qwen/Qwen2.5-0.5B-Instruct@7ae55760"),
    ],
)
def test_stages_fail_clearly_where_the_hub_is_needed(tmp_path, command, message):
    """HF_HUB_OFFLINE=1 gives the unreachable hub's failure at once instead of after network retries."""
    import os

    merged = tmp_path / "params.yaml"
    merged.write_text(yaml.safe_dump(load(GPU, REPO / "params.yaml"), sort_keys=False))
    proc = subprocess.run(
        ["gsm8k", command, "--params", str(merged), "--out-dir", str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "out").exists()
