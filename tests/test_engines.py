"""Both engines build the whole DAG for real, in temp git repos, on test-sized params with two seeds: the
same files, no-op reruns, and minimal reruns after a params or code edit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from conftest import outputs, run, test_params
from engines import dvc_stale, snakemake_plan, snakemake_ran
from gsm8k_pipeline.workspace.publish import cell

SEEDS = [0, 1]


def runs(stage: str, *prefix: str) -> set[str]:
    """The test DAG's jobs of a replicated stage (budget 8, every seed): e.g. grpo@8-0, grpo@8-1."""
    return {f"{stage}@{'-'.join([*prefix, '8', str(s)])}" for s in SEEDS}


def evals(*methods: str) -> set[str]:
    return set().union(*(runs("eval_budget", m) for m in methods))


EVALS = {"eval@base", "eval@prep_sft"} | evals("full_sft", "grpo", "sft_from_traces")
MODELS = ["base", "prep_sft"] + [f"{m}_8_s{s}" for m in ("full_sft", "grpo", "sft_from_traces") for s in SEEDS]
METHODS = ("full_sft", "grpo", "sft_from_traces")
# The test grids (tests/support/checkout.py), as both engines write the rates.
RATES = {"full_sft": ["0.001", "0.003"], "grpo": ["5e-05", "0.00015"], "sft_from_traces": ["0.001", "0.003"]}


def tuning(kind: str, *methods: str) -> set[str]:
    """The learning-rate selection's jobs at budget 8: kind tune or tune_eval, one per rate; select, one."""
    if kind == "select":
        return {f"select_{m}@8" for m in methods}
    return {f"{kind}_{m}@8-{lr}" for m in methods for lr in RATES[m]}


TUNE_EVALS = tuning("tune_eval", *METHODS)
SELECTS = tuning("select", *METHODS)
TUNING = tuning("tune", *METHODS) | TUNE_EVALS | SELECTS


@pytest.fixture(scope="module")
def repos(tmp_path_factory, built_engines):
    """The test DAG built from nothing by each engine (test_sharing.py's too: conftest.built_engines)."""
    return built_engines(tmp_path_factory.mktemp("engines"), test_params(seeds=SEEDS))


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
    assert {
        "models/tune_grpo/8/lr5e-05/model/model.safetensors",
        "models/tune_sft_from_traces/8/lr0.003/train_log.csv",
        "metrics/tune/full_sft_8/full_sft_8_lr0.001/summary.txt",
        *(f"metrics/select/{m}_8.json" for m in METHODS),
    } <= set(a)
    assert not [k for k in a if "checkpoint" in k]
    # Every output but the timings files, byte for byte: train logs, metrics, summaries, leaderboard, plots.
    assert [k for k in a if a[k] != b[k]] == []
    # The wall-clock figures are all in the timings files (so the comparison above can be exact).
    for repo in repos:
        for m in MODELS:
            clock = json.loads((repo / f"metrics/eval/{m}/timings.json").read_text())
            assert clock["seconds"] > 0
            # The boosters run on the models params eval.boosters.models selects: prep_sft and every seed 0.
            scored = m == "prep_sft" or m.endswith("_s0")
            assert ("boosters" in clock) == scored, m
            assert not scored or clock["boosters"]["calculator"]["seconds"] > 0
        assert "train_runtime" in json.loads((repo / "models/grpo/8/s1/timings.json").read_text())["log"][-1]
        for m in METHODS:  # the candidates' validation evals: greedy only (no eval.boosters.models pattern)
            for lr in RATES[m]:
                clock = json.loads((repo / f"metrics/tune/{m}_8/{m}_8_lr{lr}/timings.json").read_text())
                assert clock["seconds"] > 0 and "boosters" not in clock
        assert "seconds" not in (repo / "metrics/eval/prep_sft.json").read_text()
    records = [json.loads((r / "metrics/all.json").read_text()) for r in repos]
    assert all(len(m["git_commit"]) == 40 for m in records[0]["models"].values())
    board = (smk / "metrics/LEADERBOARD.md").read_text()
    assert all(f"| {m} |" in board for m in MODELS)
    assert board.startswith("# Leaderboard\n\n## Answer") and "mean over 2 seed(s)" in board
    assert "## Learning rates chosen on validation" in board
    for m in METHODS:
        chosen = json.loads(a[f"metrics/select/{m}_8.json"])
        assert [c["learning_rate"] for c in chosen["candidates"]] == [float(lr) for lr in RATES[m]]
        assert chosen["at_edge"] and chosen["candidates"][0]["n"] == 12  # two rates: either is an edge
        assert records[0]["selection"][f"{m}_8"] == chosen
        # The final run of the tuning seed trains exactly as the chosen candidate did.
        lr = f"{chosen['chosen']}"
        assert a[f"models/{m}/8/s0/model/model.safetensors"] == a[f"models/tune_{m}/8/lr{lr}/model/model.safetensors"]
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
    | TUNING
)
# Module edited -> the stages of the test DAG whose command imports it (written out by hand, not computed
# with dag.code_deps, so this checks the closure too).
TRAINING = {"prep_sft"} | runs("full_sft") | runs("grpo") | runs("sft_from_traces") | tuning("tune", *METHODS)
EVALUATING = EVALS | TUNE_EVALS
IMPORTERS = {
    "task.py": ALL_JOBS - {"leaderboard"} - SELECTS,  # read_jsonl / gold
    "grader.py": runs("grpo") | tuning("tune", "grpo") | runs("traces") | EVALUATING,  # rewards and eval grade
    "training.py": TRAINING,
    "cli/__init__.py": ALL_JOBS,  # the dispatcher: every command
    "results.py": {"leaderboard"},
    "leaderboard/sections.py": {"leaderboard"},  # the leaderboard's text
    "select.py": SELECTS,  # the choice of a learning rate: json and the standard library, nothing else
    # the leaderboard: its NORMALISATION, not its text
    "contamination.py": {"download", "leaderboard"} | EVALUATING,
    # decoding: not the SFT stages (loading.py loads)
    "generation.py": runs("grpo") | tuning("tune", "grpo") | runs("traces") | EVALUATING,
    "dag.py": set(),  # planning: dvc.yaml's generator and the Snakefile's code deps, run by no stage
    "cli/grade.py": set(),  # `gsm8k grade`, a tool: the grader's library is grader.py
}
# DVC's check_params (every stage runs after it) reruns whenever params.yaml or its code changes, and writes
# the same file, so nothing reruns through it; Snakemake validates at parse time and never reruns it.
CHECK = {"check_params"}
CHECK_CODE = {"cli/__init__.py"}  # of IMPORTERS' modules, those `gsm8k check-params` executes
# Each job's direct dependents in the test DAG; DESCENDANTS closes over them.
CHILDREN = (
    {
        "download": {"base_model", "prep_sft"} | TRAINING - {"prep_sft"} | runs("traces") | EVALS,
        "base_model": {"prep_sft", "eval@base"},
        "prep_sft": {"eval@prep_sft"} | TRAINING - {"prep_sft"},
        "traces@8-0": {"sft_from_traces@8-0"} | tuning("tune", "sft_from_traces"),
        "traces@8-1": {"sft_from_traces@8-1"},
    }
    | {f"tune_{m}@8-{lr}": {f"tune_eval_{m}@8-{lr}"} for m in METHODS for lr in RATES[m]}
    | {f"tune_eval_{m}@8-{lr}": {f"select_{m}@8"} for m in METHODS for lr in RATES[m]}
    # A selection's final runs are no dependents that a plan can see: they take the chosen rate as a param,
    # read once the selection has run (a checkpoint), and rerun only if it moved (test_editing_grids_…).
    | {f"select_{m}@8": set() for m in METHODS}
    | {f"full_sft@8-{s}": {f"eval_budget@full_sft-8-{s}"} for s in SEEDS}
    | {f"grpo@8-{s}": {f"traces@8-{s}", f"eval_budget@grpo-8-{s}"} for s in SEEDS}
    | {f"sft_from_traces@8-{s}": {f"eval_budget@sft_from_traces-8-{s}"} for s in SEEDS}
    | {e: {"leaderboard"} for e in EVALS}
    | {"leaderboard": set()}
)
for _select in SELECTS:  # the leaderboard shows the selections
    CHILDREN[_select] = CHILDREN[_select] | {"leaderboard"}


def _reach(job: str, edges: dict[str, set[str]]) -> set[str]:
    """Every job reached from `job` along `edges` (CHILDREN: its descendants; UPSTREAM: its ancestors)."""
    found, todo = set(), [job]
    while todo:
        for nxt in edges.get(todo.pop(), set()) - found:
            found.add(nxt)
            todo.append(nxt)
    return found


DESCENDANTS = {job: _reach(job, CHILDREN) for job in ALL_JOBS}
assert DESCENDANTS["prep_sft"] == ALL_JOBS - {"download", "base_model", "prep_sft", "eval@base"}
# The DAG as its files connect it, the selections' final runs included (their selection input is ancient()).
UPSTREAM = {job: {parent for parent, children in CHILDREN.items() if job in children} for job in ALL_JOBS}
for _method in METHODS:
    for _run in runs(_method):
        UPSTREAM[_run].add(f"select_{_method}@8")


def snakemake_first_pass(changed: set[str]) -> set[str]:
    """What `snakemake -n` plans when the jobs `changed` have a reason of their own (code, params): its first
    pass, before any selection (a checkpoint) has run. Snakemake skips the reasons of every job downstream of
    one that will run (it would rerun anyway), and a rerun propagates to dependents, but not through an
    ancient() input: so past a selection that reruns, the final runs it feeds (and all that follows them)
    are left to the second pass, made once the selection has run (the grid test runs that for real). A job
    with a reason of its own is planned when nothing upstream of it has one; what it reruns, when nothing
    stops it."""
    first = {job for job in changed if not _reach(job, UPSTREAM) & changed}
    return first | set().union(set(), *(DESCENDANTS[job] for job in first))


@pytest.mark.parametrize("module", sorted(IMPORTERS))
def test_editing_a_module_makes_exactly_its_importers_stale(repos, module):
    """A comment added to a module: Snakemake plans its importers and everything downstream of them, up to
    the selections (snakemake_first_pass); DVC reports its importers as changed (DVC reruns a descendant only
    if its inputs then change)."""
    importers = IMPORTERS[module]
    stale = snakemake_first_pass(importers)
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


def chosen(repo: Path) -> dict[str, float]:
    return {m: json.loads((repo / f"metrics/select/{m}_8.json").read_text())["chosen"] for m in METHODS}


def test_editing_an_eval_param_reruns_the_evals_and_the_selections_not_the_training(repos):
    """An eval param changes the test evals and the candidates' validation scores, so the selections are
    made again; a final run reruns only if its method's choice moved. Both engines plan the test evals and
    the candidates' validation evals (Snakemake the selections after them too), no training, then go back to
    the old value and have nothing to do. Whether a selection made again reruns the final runs is known only
    once it has run: the grid test runs that for real in both engines (grpo's choice stays, full_sft's moves)."""
    for repo in repos:
        edit(repo, "eval", "max_new_tokens", lambda v: v + 4)
    smk, dvc = repos
    assert snakemake_plan(smk, "metrics/all.json") == snakemake_first_pass(EVALUATING)
    # The test evals wait for the selections (their runs do), and SFT on traces' validation evals for grpo's.
    assert snakemake_first_pass(EVALUATING) == (
        {"eval@base", "eval@prep_sft", "select_full_sft@8", "select_grpo@8", "leaderboard"}
        | tuning("tune_eval", "full_sft", "grpo")
    )
    assert dvc_stale(dvc) == EVALUATING | {"leaderboard"} | CHECK
    for repo in repos:
        edit(repo, "eval", "max_new_tokens", lambda v: v - 4)
    assert snakemake_plan(smk, "metrics/all.json") == set() and dvc_stale(dvc) == set()


def test_editing_grids_reruns_the_new_candidates_and_the_runs_whose_choice_moved(repos):
    """grpo's grid gains a larger rate: that one candidate trains and is scored, the selection is made again
    and keeps its rate (a tie goes to the smaller), so no grpo run retrains. full_sft's grid loses the rate it
    chose: nothing new to train, but both SFT methods (sft_from_traces uses full_sft's grid) move to the rate
    that is left, so their final runs retrain, at it (each tuning seed's run copied from its candidate).
    Both engines, for real."""
    before = chosen(repos[0])
    assert before["full_sft"] == 0.001 and before["grpo"] == 5e-05
    for repo in repos:
        edit(repo, "grpo", "learning_rates", lambda v: [*v, 4.5e-4])
        edit(repo, "full_sft", "learning_rates", lambda v: [0.003])
    new_candidate = {"tune_grpo@8-0.00045", "tune_eval_grpo@8-0.00045"}
    moved = runs("full_sft") | runs("sft_from_traces") | evals("full_sft", "sft_from_traces")
    expected = new_candidate | SELECTS | moved | {"leaderboard"}
    smk, dvc = repos
    ran = {"snakemake": snakemake_ran(smk, "metrics/all.json")}
    lines = run(["dvc", "repro"], dvc).stdout.splitlines()
    ran["dvc"] = {line.split("'")[1] for line in lines if line.startswith("Running stage")} - CHECK
    for repo, jobs in zip(repos, ran.values(), strict=True):
        assert jobs == expected, sorted(jobs ^ expected)
        assert chosen(repo) == {"full_sft": 0.003, "grpo": 5e-05, "sft_from_traces": 0.003}
        copied = json.loads((repo / "models/full_sft/8/s0/timings.json").read_text())
        assert copied["reused"] == "models/tune_full_sft/8/lr0.003"
    assert outputs(smk) == outputs(dvc)
    assert snakemake_plan(smk, "metrics/all.json") == set() and dvc_stale(dvc) == set()
