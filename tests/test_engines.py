"""Both engines for real, in temp git repos, on test-sized params: same outputs, no-op reruns, minimal reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import make_checkout, run, test_params
from engines import dvc_stale, snakemake_plan

TIMING_KEYS = {"seconds", "problems_per_second"}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    params = test_params()
    smk = make_checkout(tmp_path_factory.mktemp("smk"), params)
    run(["snakemake", "--cores", "1", "metrics/eval/base.json"], smk)
    dvc = make_checkout(tmp_path_factory.mktemp("dvc"), params)
    run(["dvc", "repro"], dvc)
    return smk, dvc


def files_under(root: Path, *dirs: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for d in dirs for p in sorted((root / d).rglob("*"))
        if p.is_file() and p.name not in (".gitignore", ".snakemake_timestamp")  # engine bookkeeping
    }


def test_engines_produce_identical_outputs(repos):
    smk, dvc = repos
    a, b = files_under(smk, "data", "models"), files_under(dvc, "data", "models")
    assert set(a) == set(b)
    assert {"data/gsm8k/train.jsonl", "models/base/model/model.safetensors", "models/base/model/tokenizer.json"} <= set(a)
    assert [k for k in a if a[k] != b[k]] == []

    metrics = [json.loads((r / "metrics/eval/base.json").read_text()) for r in repos]
    assert {k: v for k, v in metrics[0].items() if k not in TIMING_KEYS} == \
           {k: v for k, v in metrics[1].items() if k not in TIMING_KEYS}
    assert metrics[0]["n"] == 12 and 0 <= metrics[0]["accuracy"] <= 1
    assert (smk / "metrics/eval/base/debug.csv").read_bytes() == (dvc / "metrics/eval/base/debug.csv").read_bytes()


def test_second_run_does_nothing(repos):
    smk, dvc = repos
    assert snakemake_plan(smk, "metrics/eval/base.json") == set()
    assert dvc_stale(dvc) == set()
    out = run(["dvc", "repro"], dvc).stdout
    assert "Running stage" not in out


def test_editing_an_eval_param_reruns_only_eval(repos):
    for repo in repos:
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["eval"]["max_new_tokens"] += 4
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    smk, dvc = repos
    assert snakemake_plan(smk, "metrics/eval/base.json") == {"eval@base"}
    assert dvc_stale(dvc) == {"eval@base"}

    model_before = (smk / "models/base/model/model.safetensors").stat().st_mtime_ns
    run(["snakemake", "--cores", "1", "metrics/eval/base.json"], smk)
    assert (smk / "models/base/model/model.safetensors").stat().st_mtime_ns == model_before
    out = run(["dvc", "repro"], dvc).stdout
    assert [line for line in out.splitlines() if line.startswith("Running stage")] == ["Running stage 'eval@base':"]
    for repo in repos:
        assert json.loads((repo / "metrics/eval/base.json").read_text())["generation"]["max_new_tokens"] == 16
