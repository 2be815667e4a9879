"""Real Snakemake runs on a test-sized checkout: contamination reaches the console and the eval metrics, and
a model folder missing a file it was written with is remade instead of failing the next stage."""

from __future__ import annotations

import json

import pytest

from conftest import make_checkout, run, test_params
from engines import snakemake_plan
from gsm8k_pipeline import fileio
from test_download import contaminated


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """download → base_model → eval@base on a local source whose test rows 2, 4, ..., 24 repeat train ones."""
    source = contaminated(tmp_path_factory.mktemp("data"))
    repo = make_checkout(tmp_path_factory.mktemp("smk"), test_params(data={"source": f"local:{source}"}))
    proc = run(["snakemake", "--cores", "1", "metrics/eval/base.json"], repo)
    return repo, proc.stdout + proc.stderr


def test_contamination_is_on_the_console_and_in_the_eval_metrics(built):
    repo, console = built
    assert (
        "data/gsm8k/stats.json: contamination: 12 of 24 test questions (50.0 %) also appear in the train split"
        in console
    )
    assert "gsm8k download: warning: contamination: 12 of 24" in (repo / "logs/download.log").read_text()
    metrics = json.loads((repo / "metrics/eval/base.json").read_text())
    # eval.samples is 12 at test size: rows 2, 4, ..., 12 of those are train questions.
    assert metrics["contamination"] == {
        "evaluated_in_train": 6,
        "evaluated": 12,
        "split_in_train": 12,
        "split_rows": 24,
    }


def test_a_file_deleted_inside_a_model_folder_remakes_the_folder(built):
    repo, _ = built
    weights = repo / "models/base/model/model.safetensors"
    assert fileio.manifest_problems(repo / "models/base/model") == []
    weights.unlink()
    # Snakemake alone saw models/base/model present and planned nothing; eval would then fail on the folder.
    assert snakemake_plan(repo, "metrics/eval/base.json") == {"base_model", "eval@base"}
    printed = run(["snakemake", "-n", "--cores", "1", "metrics/eval/base.json"], repo)
    assert (
        "models/base/model/model.safetensors is missing (the folder's .manifest.json lists what its job wrote): "
        "remaking models/base/model"
    ) in printed.stdout + printed.stderr
    run(["snakemake", "--cores", "1", "models/base/model"], repo)
    assert weights.is_file() and fileio.manifest_problems(repo / "models/base/model") == []
    assert snakemake_plan(repo, "models/base/model") == set()  # remade once, not every time


def test_the_manifest_names_missing_and_truncated_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"12345")
    (tmp_path / "sub/b.txt").write_text("b")
    fileio.write_manifest(tmp_path)
    (tmp_path / ".snakemake_timestamp").touch()  # Snakemake's marker, touched after the job: not content
    assert fileio.manifest_problems(tmp_path) == []
    (tmp_path / "a.bin").write_bytes(b"12")
    (tmp_path / "sub/b.txt").unlink()
    assert fileio.manifest_problems(tmp_path) == [
        f"{tmp_path / 'a.bin'} has 2 bytes, not 5",
        f"{tmp_path / 'sub/b.txt'} is missing",
    ]
    assert fileio.manifest_problems(tmp_path / "sub") == []  # no manifest of its own: nothing to check
