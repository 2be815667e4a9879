"""Both engines build the whole DAG for real, in temp git repos, on test-sized params with two seeds: the
same files, no-op reruns, and minimal reruns after a params or code edit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from conftest import make_checkout, outputs, run, test_params
from engines import dvc_stale, snakemake_plan
from gsm8k_pipeline.workspace.publish import cell

SEEDS = [0, 1]


def runs(stage: str, *prefix: str) -> set[str]:
    """The test DAG's jobs of a replicated stage (budget 8, every seed): e.g. grpo@8-0, grpo@8-1."""
    return {f"{stage}@{'-'.join([*prefix, '8', str(s)])}" for s in SEEDS}


def evals(*methods: str) -> set[str]:
    return set().union(*(runs("eval_budget", m) for m in methods))


EVALS = {"eval@base", "eval@prep_sft"} | evals("full_sft", "grpo", "sft_from_traces")
MODELS = ["base", "prep_sft"] + [f"{m}_8_s{s}" for m in ("full_sft", "grpo", "sft_from_traces") for s in SEEDS]


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    params = test_params(seeds=SEEDS)
    smk = make_checkout(tmp_path_factory.mktemp("smk"), params)
    run(["snakemake", "--cores", "1", "metrics/all.json"], smk)
    dvc = make_checkout(tmp_path_factory.mktemp("dvc"), params)
    run(["dvc", "repro"], dvc)
    return smk, dvc


def test_engines_build_everything_and_identically(repos):
    smk, dvc = repos
    a, b = outputs(smk), outputs(dvc)
    assert set(a) == set(b)
    assert {
        "data/traces/grpo_8_s1.jsonl",
        "models/grpo/8/s0/model/model.safetensors",
        "models/sft_from_traces/8/s1/train_log.csv",
        "metrics/all.json",
        "metrics/LEADERBOARD.md",
        *(f"metrics/eval/{m}/summary.txt" for m in MODELS),
    } <= set(a)
    assert not [k for k in a if "checkpoint" in k]
    # Every output but the timings files, byte for byte: train logs, metrics, summaries, leaderboard, plots.
    assert [k for k in a if a[k] != b[k]] == []
    # The wall-clock figures are all in the timings files (so the comparison above can be exact).
    for repo in repos:
        for m in MODELS:
            clock = json.loads((repo / f"metrics/eval/{m}/timings.json").read_text())
            assert clock["seconds"] > 0
            # The boosters run on the models params eval.boosters.models selects: all but seed 1's.
            scored = not m.endswith("_s1")
            assert ("boosters" in clock) == scored, m
            assert not scored or clock["boosters"]["calculator"]["seconds"] > 0
        assert "train_runtime" in json.loads((repo / "models/grpo/8/s1/timings.json").read_text())["log"][-1]
        assert "seconds" not in (repo / "metrics/eval/prep_sft.json").read_text()
    records = [json.loads((r / "metrics/all.json").read_text()) for r in repos]
    assert all(len(m["git_commit"]) == 40 for m in records[0]["models"].values())
    board = (smk / "metrics/LEADERBOARD.md").read_text()
    assert all(f"| {m} |" in board for m in MODELS)
    assert board.startswith("# Leaderboard\n\n## Answer") and "mean over 2 seed(s)" in board
    # Different seeds train different models (else the "seeds" would measure nothing).
    assert a["models/grpo/8/s0/model/model.safetensors"] != a["models/grpo/8/s1/model/model.safetensors"]


def test_a_real_run_publishes_to_the_workspace(repos, tmp_path):
    """`gsm8k publish` takes the test-sized DAG's own metrics/all.json, as the results record module
    wrote it, and the workspace leaderboard ranks every model of it."""
    smk = repos[0]
    workspace = tmp_path / "ws"
    run(["gsm8k", "workspace", "init", str(workspace)], smk)
    proc = run(["gsm8k", "publish", "--workspace", str(workspace), "--agent-id", "tester"], smk)
    assert "other params" not in proc.stderr  # the record's params digest is that of params.yaml
    board = (workspace / "LEADERBOARD.md").read_text()
    models = json.loads((smk / "metrics/all.json").read_text())["models"]
    assert all(f"| {cell(model_id)} |" in board for model_id in models), board
    published = json.loads(next((workspace / "artifacts/results/tester").glob("*.json")).read_text())
    assert {r["id"] for r in published["models"]} == set(models)
    assert published["comparisons"] == json.loads((smk / "metrics/all.json").read_text())["comparisons"] != {}


def test_the_html_report_opens_on_the_answer_with_its_plots(repos, tmp_path):
    """`snakemake --report`, opened in headless Chromium: the Answer and the methods table are on the page,
    the plots are images that decoded, and the screenshot is not blank."""
    import matplotlib.image

    from browser import rendered_dom, screenshot

    smk = repos[0]
    run(["snakemake", "--cores", "1", "--report", str(tmp_path / "report.html")], smk)
    dom = rendered_dom(tmp_path / "report.html")
    assert "The answer" in dom and "GRPO vs SFT on the original solutions" in dom
    assert "Methods by budget" in dom and "sft_from_traces" in dom
    assert dom.count('src="data:image/png;base64,') >= 2
    shot = matplotlib.image.imread(screenshot(tmp_path / "report.html", tmp_path / "shot.png"))
    assert shot.std() > 0.05  # not one flat colour
    # matplotlib's first line colour (C0, #1f77b4) is only in the plots: they were drawn, not broken icons.
    c0 = (
        (abs(shot[..., 0] - 0x1F / 255) < 0.03)
        & (abs(shot[..., 1] - 0x77 / 255) < 0.03)
        & (abs(shot[..., 2] - 0xB4 / 255) < 0.03)
    )
    assert c0.sum() > 20  # 70 seen at test size; 0 when the images are broken


def test_second_run_does_nothing(repos):
    smk, dvc = repos
    assert snakemake_plan(smk, "metrics/all.json") == set()
    assert dvc_stale(dvc) == set()
    assert "Running stage" not in run(["dvc", "repro"], dvc).stdout


ALL_JOBS = (
    {"download", "base_model", "prep_sft", "leaderboard"}
    | EVALS
    | runs("full_sft")
    | runs("grpo")
    | runs("traces")
    | runs("sft_from_traces")
)
# Module edited -> the stages of the test DAG whose command imports it (written out by hand, not computed
# with dag.code_deps, so this checks the closure too).
IMPORTERS = {
    "task.py": ALL_JOBS - {"leaderboard"},  # read_jsonl / gold
    "grader.py": runs("grpo") | runs("traces") | EVALS,  # rewards and eval grade
    "training.py": {"prep_sft"} | runs("full_sft") | runs("grpo") | runs("sft_from_traces"),
    "cli/__init__.py": ALL_JOBS,  # the dispatcher: every command
    "results.py": {"leaderboard"},
    "leaderboard/sections.py": {"leaderboard"},  # the leaderboard's text
    "contamination.py": {"download", "leaderboard"} | EVALS,  # the leaderboard: its NORMALISATION, not its text
    "generation.py": runs("grpo") | runs("traces") | EVALS,  # decoding: not the SFT stages (loading.py loads)
    "dag.py": set(),  # planning: dvc.yaml's generator and the Snakefile's code deps, run by no stage
    "cli/grade.py": set(),  # `gsm8k grade`, a tool: the grader's library is grader.py
}
# DVC's check_params (every stage runs after it) reruns whenever params.yaml or its code changes, and writes
# the same file, so nothing reruns through it; Snakemake validates at parse time and never reruns it.
CHECK = {"check_params"}
CHECK_CODE = {"cli/__init__.py"}  # of IMPORTERS' modules, those `gsm8k check-params` executes
DESCENDANTS = (
    {
        "download": ALL_JOBS - {"download"},
        "base_model": ALL_JOBS - {"download", "base_model"},
        "prep_sft": ALL_JOBS - {"download", "base_model", "prep_sft", "eval@base"},
    }
    | {f"full_sft@8-{s}": {f"eval_budget@full_sft-8-{s}", "leaderboard"} for s in SEEDS}
    | {
        f"grpo@8-{s}": {
            f"traces@8-{s}",
            f"sft_from_traces@8-{s}",
            f"eval_budget@grpo-8-{s}",
            f"eval_budget@sft_from_traces-8-{s}",
            "leaderboard",
        }
        for s in SEEDS
    }
    | {f"traces@8-{s}": {f"sft_from_traces@8-{s}", f"eval_budget@sft_from_traces-8-{s}", "leaderboard"} for s in SEEDS}
    | {f"sft_from_traces@8-{s}": {f"eval_budget@sft_from_traces-8-{s}", "leaderboard"} for s in SEEDS}
    | {e: {"leaderboard"} for e in EVALS}
    | {"leaderboard": set()}
)


@pytest.mark.parametrize("module", sorted(IMPORTERS))
def test_editing_a_module_makes_exactly_its_importers_stale(repos, module):
    """A comment added to a module: Snakemake plans its importers and everything downstream of them; DVC
    reports its importers as changed (DVC reruns a descendant only if its inputs then change)."""
    importers = IMPORTERS[module]
    stale = importers | set().union(set(), *(DESCENDANTS[s] for s in importers))
    for repo in repos:
        path = repo / "src/gsm8k_pipeline" / module
        text, stat = path.read_text(), path.stat()
        try:
            path.write_text(text + "# an edit that changes nothing but the file\n")
            if repo == repos[0]:
                assert snakemake_plan(repo, "metrics/all.json") == stale
            else:
                assert dvc_stale(repo) == importers | (CHECK if module in CHECK_CODE else set())
        finally:  # put back content and mtime (Snakemake compares mtimes), so later tests see no edit
            path.write_text(text)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def edit(repo: Path, section: str, key: str, change) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = change(params[section][key])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_editing_resources_reruns_nothing(repos):
    """What a scheduler reserves is no input of any stage, the leaderboard's params digest included; DVC
    only checks the edited params file again."""
    for repo in repos:
        edit(repo, "resources", "train", lambda r: {**r, "mem_mb": r["mem_mb"] * 2, "gpus": 1})
    smk, dvc = repos
    assert snakemake_plan(smk, "metrics/all.json") == set()
    assert dvc_stale(dvc) == CHECK
    ran = [line for line in run(["dvc", "repro"], dvc).stdout.splitlines() if line.startswith("Running stage")]
    assert {line.split("'")[1] for line in ran} == CHECK
    assert dvc_stale(dvc) == set()


def test_editing_an_eval_param_reruns_only_evals_and_leaderboard(repos):
    """Both engines plan exactly the evals and the leaderboard; DVC runs them for real (what ran is in its
    output) and Snakemake, whose plan is what it runs, goes back to the old value and has nothing to do."""
    for repo in repos:
        edit(repo, "eval", "max_new_tokens", lambda v: v + 4)
    smk, dvc = repos
    assert snakemake_plan(smk, "metrics/all.json") == EVALS | {"leaderboard"}
    assert dvc_stale(dvc) == EVALS | {"leaderboard"} | CHECK

    ran = [line for line in run(["dvc", "repro"], dvc).stdout.splitlines() if line.startswith("Running stage")]
    assert {line.split("'")[1] for line in ran} == EVALS | {"leaderboard"} | CHECK
    assert json.loads((dvc / "metrics/eval/base.json").read_text())["generation"]["max_new_tokens"] == 16
    edit(smk, "eval", "max_new_tokens", lambda v: v - 4)
    assert snakemake_plan(smk, "metrics/all.json") == set()


def test_editing_a_grpo_param_reruns_grpo_and_what_follows(repos):
    for repo in repos:
        edit(repo, "grpo", "learning_rate", lambda v: v * 2)
    expected = (
        runs("grpo") | runs("traces") | runs("sft_from_traces") | evals("grpo", "sft_from_traces") | {"leaderboard"}
    )
    smk, dvc = repos
    assert snakemake_plan(smk, "metrics/all.json") == expected
    # `dvc status` names only the stages whose own deps changed, so run DVC for real and see what ran.
    # DVC compares content: a stage whose inputs came out byte-identical (e.g. all-fallback traces from a
    # test-sized model) is rightly skipped, so what runs is a subset of Snakemake's plan.
    ran = [line for line in run(["dvc", "repro"], dvc).stdout.splitlines() if line.startswith("Running stage")]
    ran = {line.split("'")[1] for line in ran}
    assert runs("grpo") | runs("traces") | evals("grpo") | {"leaderboard"} | CHECK <= ran <= expected | CHECK
