"""Sharing results, for real: `dvc push` to a local remote, a fresh `git clone` + `dvc pull` gives the same
files; one `snakemake --touch` makes Snakemake agree the clone is up to date; `dvc metrics diff` shows what
a params branch changed. One test-sized DAG build (`dvc repro`, the one test_engines.py makes: conftest.built_engines),
shared by every test here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import run, test_params
from engines import dvc_stale, snakemake_plan
from gsm8k_pipeline import METHODS

SEEDS = [0, 1]  # test_engines.py's, whose DVC build this file shares
OUTPUT_DIRS = ("data", "models", "metrics")
EVAL_FILES = [
    f"metrics/eval/{m}.json" for m in ("base", "prep_sft", "full_sft_8_s0", "grpo_8_s0", "sft_from_traces_8_s0")
]
# What git (not DVC) must hold after a run: the lock, the `cache: false` metrics/plots, DVC's .gitignores.
GIT_RESULTS = {
    "dvc.lock",
    "metrics/all.json",
    "metrics/LEADERBOARD.md",
    "metrics/accuracy_vs_budget.csv",
    "metrics/accuracy_vs_budget.png",
    "metrics/grpo_reward.png",
    *EVAL_FILES,
    "data/gsm8k/.gitignore",
    "data/traces/.gitignore",
    "models/base/.gitignore",
    "models/prep_sft/.gitignore",
    "models/full_sft/8/s0/.gitignore",
    "models/grpo/8/s0/.gitignore",
    "models/sft_from_traces/8/s0/.gitignore",
    *(f.removesuffix(".json") + "/.gitignore" for f in EVAL_FILES),
}
TOUCH = ["snakemake", "--cores", "1", "--touch"]
DIFFED = ["eval@base", "eval@prep_sft"]  # the evals the params branch reruns


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for d in OUTPUT_DIRS
        for p in sorted((root / d).rglob("*"))
        if p.is_file() and p.name != ".snakemake_timestamp"  # Snakemake's marker in directory() outputs
    }


def git_files(repo: Path) -> set[str]:
    return set(run(["git", "ls-files"], repo).stdout.split())


def set_param(repo: Path, path: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, key = path.split(".")
    node = params
    for p in parents:
        node = node[p]
    node[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def snakemake_metadata_rules(repo: Path) -> set[str]:
    """Rules with provenance records (params, code, input set) in .snakemake/metadata."""
    meta = repo / ".snakemake" / "metadata"
    return {json.loads(f.read_text())["rule"] for f in meta.iterdir()} if meta.exists() else set()


@pytest.fixture(scope="module")
def origin(tmp_path_factory, built_engines):
    """A built, committed and pushed checkout: (repo, remote). The DAG test_engines.py builds with DVC, built
    once for both files (conftest.built_engines)."""
    _, repo = built_engines(tmp_path_factory.mktemp("origin"), test_params(seeds=SEEDS))
    # Engine bookkeeping never belongs in a commit (the project's .gitignore says so; the temp checkout has none).
    with open(repo / ".git" / "info" / "exclude", "a") as f:
        f.write(".snakemake/\n/logs/\n")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "results"], repo)
    remote = tmp_path_factory.mktemp("remote")
    run(["dvc", "remote", "add", "-d", "local", str(remote)], repo)
    run(["git", "commit", "-q", "-am", "dvc remote"], repo)
    run(["dvc", "push"], repo)
    return repo, remote


@pytest.fixture(scope="module")
def clone(origin, tmp_path_factory):
    """A fresh clone of origin, with its data pulled from the remote."""
    repo, _ = origin
    dest = tmp_path_factory.mktemp("clone") / "repo"
    run(["git", "clone", "-q", str(repo), str(dest)], dest.parent)
    run(["dvc", "pull"], dest)
    return dest


def test_run_results_are_committed_to_git_and_the_rest_pushed(origin):
    repo, remote = origin
    tracked = git_files(repo)
    assert GIT_RESULTS <= tracked, GIT_RESULTS - tracked
    # Outputs are DVC's; models/pretrained/README.md (where local base models go) is the checkout's own file.
    assert not [
        f
        for f in tracked
        if f.startswith(("data/", "models/")) and not f.endswith(".gitignore") and f != "models/pretrained/README.md"
    ]
    assert run(["git", "status", "--porcelain"], repo).stdout == ""
    assert dvc_stale(repo) == set()
    assert json.loads(run(["dvc", "status", "--cloud", "--json"], repo).stdout or "{}") == {}
    assert any(p.is_file() for p in remote.rglob("*"))


def test_clone_and_pull_gives_identical_files(origin, clone):
    original, pulled = files_under(origin[0]), files_under(clone)
    assert {
        "models/grpo/8/s0/model/model.safetensors",
        "data/traces/grpo_8_s0.jsonl",
        "metrics/all.json",
        "metrics/eval/base/debug.csv",
    } <= set(original)
    assert set(pulled) == set(original)
    assert [k for k in original if original[k] != pulled[k]] == []
    assert dvc_stale(clone) == set()


def test_snakemake_touch_makes_a_pulled_clone_up_to_date(origin, clone):
    """DVC keeps no file times: the clone's metrics (from git) predate its models (from the pull), so
    Snakemake, which compares mtimes, would rerun the evals. `--touch` marks the outputs current in DAG
    order without running anything."""
    before = files_under(clone)
    dry = run(["snakemake", "-n", "--cores", "1", "metrics/all.json"], clone).stdout
    assert "leaderboard" in snakemake_plan(clone, "metrics/all.json")
    # Provenance (params, code, input set per output) lives in .snakemake/metadata, which is not shared.
    # Without it those triggers cannot fire (Snakemake only warns), so in the clone only mtimes decide.
    assert not snakemake_metadata_rules(clone)
    assert "missing provenance/metadata" in dry
    reasons = {line.split("reason: ", 1)[1].split(":")[0] for line in dry.splitlines() if "reason: " in line}
    assert reasons <= {"Updated input files", "Input files updated by another job"}, reasons
    run(TOUCH + ["metrics/all.json"], clone)
    assert snakemake_plan(clone, "metrics/all.json") == set()
    assert files_under(clone) == before  # times only, never contents
    assert dvc_stale(clone) == set()  # the .snakemake_timestamp markers are in .dvcignore

    # But plain --touch records provenance only for the jobs it touched: `download` never is (its inputs
    # are git files, older than any pulled output), so Snakemake cannot see a change to its params.
    assert "download" not in snakemake_metadata_rules(clone)
    set_param(clone, "data.synthetic.n_test", 25)
    assert "download" in dvc_stale(clone)
    assert "download" not in snakemake_plan(clone, "metrics/all.json")  # the blind spot
    run(["git", "checkout", "params.yaml"], clone)

    # --forceall touches (and records provenance for) every job; safe because `dvc status` says the pulled
    # outputs match the current params and code.
    assert dvc_stale(clone) == set()
    run(TOUCH + ["--forceall", "metrics/all.json"], clone)
    assert snakemake_plan(clone, "metrics/all.json") == set()
    assert files_under(clone) == before
    rules = {
        "check_params",
        "download",
        "base_model",
        "prep_sft",
        "full_sft",
        "grpo",
        "traces",
        "sft_from_traces",
        "eval",
        "eval_budget",
        "leaderboard",
    } | {f"{stage}_{method}" for stage in ("tune", "tune_eval", "select") for method in METHODS}
    assert snakemake_metadata_rules(clone) == rules
    set_param(clone, "data.synthetic.n_test", 25)
    plan = snakemake_plan(clone, "metrics/all.json")
    assert {"download", "base_model", "eval@base", "leaderboard"} <= plan
    run(["git", "checkout", "params.yaml"], clone)
    assert snakemake_plan(clone, "metrics/all.json") == set()


def test_dvc_metrics_diff_shows_a_params_branch(origin):
    repo, _ = origin
    run(["git", "checkout", "-q", "-b", "fewer-samples"], repo)
    set_param(repo, "eval.samples", 6)  # accuracies at test size may be 0 either way; n is certain to change
    assert dvc_stale(repo) == {
        "check_params",  # params.yaml changed: checked again first, rerunning nothing through it
        "eval@base",
        "eval@prep_sft",
        *(f"eval_budget@{m}-8-{s}" for m in METHODS for s in SEEDS),
        "leaderboard",
    }
    # Two of them rerun are enough for a branch whose metrics differ: each eval is a process of several seconds
    # of start-up, and what an eval edit makes stale is asserted just above (both engines' plans of it:
    # test_engines.py).
    ran = run(["dvc", "repro", *DIFFED], repo).stdout.splitlines()
    assert {line.split("'")[1] for line in ran if line.startswith("Running stage")} == {"check_params", *DIFFED}
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "eval.samples: 6"], repo)

    diff = json.loads(run(["dvc", "metrics", "diff", "main", "fewer-samples", "--json"], repo).stdout)
    changed = {f"metrics/eval/{stage.split('@')[1]}.json" for stage in DIFFED}
    assert changed <= set(diff) and not (set(EVAL_FILES) - changed) & set(diff)  # only what was rerun
    for f in changed:
        assert diff[f]["n"] == {"old": 12, "new": 6, "diff": -6}
    full = json.loads(run(["dvc", "metrics", "diff", "main", "fewer-samples", "--all", "--json"], repo).stdout)
    for f in changed:
        acc = full[f]["accuracy"]
        assert {"old", "new"} <= set(acc) and 0 <= acc["old"] <= 1 and 0 <= acc["new"] <= 1
        if "diff" in acc:
            assert acc["diff"] == pytest.approx(acc["new"] - acc["old"])
    text = run(["dvc", "metrics", "diff", "main", "fewer-samples", "--all"], repo).stdout
    assert "accuracy" in text and "metrics/eval/base.json" in text
