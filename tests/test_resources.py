"""params.yaml's `resources` become each job's Snakemake resources (what profiles/slurm asks SLURM for),
are validated, and are no dependency of any stage in either engine."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO, make_checkout, run, test_params
from gsm8k_pipeline import params
from gsm8k_pipeline.cli.params import load

KIND = {
    "prep_sft": "train",
    "full_sft": "train",
    "grpo": "train",
    "sft_from_traces": "train",
    "traces": "generate",
    "eval": "eval",
    "eval_budget": "eval",
} | {f"tune_{m}": "train" for m in ("full_sft", "grpo", "sft_from_traces")}  # learning-rate candidates
KIND |= {f"tune_eval_{m}": "eval" for m in ("full_sft", "grpo", "sft_from_traces")}  # and their validation evals


def planned_resources(repo, *args) -> dict[str, dict[str, str]]:
    """rule -> the resources `snakemake -n` prints for its (last) job."""
    out = run(["snakemake", "-n", "--forceall", "--cores", "1", *args], repo).stdout
    found, rule = {}, None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line):
            rule = m.group(1)
        elif rule and line.startswith("    resources: "):
            found[rule] = dict(kv.split("=", 1) for kv in line.split(": ", 1)[1].split(", "))
    return found


@pytest.mark.parametrize("config", ["params.yaml", "configs/gpu.yaml"])
def test_each_stage_declares_the_resources_of_its_kind(tmp_path, config):
    repo = make_checkout(tmp_path / "repo", yaml.safe_load((REPO / "params.yaml").read_text()))
    declared = (params.load(REPO / config) if config == "params.yaml" else load(REPO / config))["resources"]
    planned = planned_resources(repo, "--configfile", config)
    assert set(KIND) <= set(planned)
    for rule, kind in KIND.items():
        r = declared[kind]
        assert {k: planned[rule][k] for k in ("mem_mb", "runtime", "cpus_per_task", "gpu")} == {
            "mem_mb": str(r["mem_mb"]),
            "runtime": str(r["runtime"]),
            "cpus_per_task": str(r["cpus"]),
            "gpu": str(r["gpus"]),
        }, rule
    if config == "configs/gpu.yaml":
        assert all(declared[kind]["gpus"] == 1 for kind in ("train", "generate", "eval"))


def test_fewer_cpus_than_threads_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(test_params(threads=2, resources={"eval": {"cpus": 1}})))
    with pytest.raises(params.ParamsError, match=r"resources\.eval\.cpus: 1 is less than threads \(2\)"):
        params.load(path)
    path.write_text(yaml.safe_dump(test_params(resources={"train": {"gpus": -1}})))
    with pytest.raises(params.ParamsError, match=r"resources\.train\.gpus: -1 is less than the minimum"):
        params.load(path)


def test_leaderboard_depends_on_every_section_but_resources():
    """dvc.yaml lists the leaderboard's params sections by hand (to leave out `resources`): the list must
    follow the schema, and the recorded params digest ignores resources too."""
    schema = yaml.safe_load((REPO / "workflow/schemas/params.schema.yaml").read_text())
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["leaderboard"]
    (listed,) = [p["params.yaml"] for p in stage["params"] if isinstance(p, dict)]
    assert set(listed) == set(schema["required"]) - {"resources"}
    p = test_params()
    assert params.digest(p) == params.digest(test_params(resources={"train": {"mem_mb": 1}}))
    assert params.digest(p) != params.digest(test_params(seed=1))
