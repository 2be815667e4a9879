"""The embedded default, end to end: wall time, each stage's share of it, each job's start-up apart from its
work, the boosters' share, peak memory, and whether it learns and answers.

    uv run python bench/default_dag.py [--engine snakemake|dvc] [--cores 2] [--before REF] [--keep DIR]

Copies the pipeline into a fresh temp git repo with its shipped params.yaml, builds the whole DAG from
nothing with the chosen engine, then checks the bar: base accuracy ≤ 5 %, best trained model ≥ 25 %,
prep_sft answer_proportion ≥ 90 %, GRPO's mean reward rising in every (budget, seed) run (its last
epoch above its first, on the same problems: leaderboard.reward_trends), LEADERBOARD.md opening with the Answer,
every eval that params eval.boosters.models selects carrying greedy, calculator and maj@k accuracies (the others
greedy only), and the best model's best test-time booster beating its greedy accuracy with a 95 % interval above
zero. Prints JSON (with the Answer as it came out); exits 1 if a
check fails. Per-stage times come from each job's start and finish in the engine's own log (Snakemake's log, or
DVC's `Running stage` lines timed as they stream); start-up (interpreter, imports, model load, trainer set-up)
and the boosters' seconds from the jobs' timings files.

`--before REF` builds REF's tree first (git archive; its own params.yaml and code: the checkout's src/ is put
first on PYTHONPATH, ahead of the installed package), then this working tree, one after the other on this
machine, and says which outputs differ (every file but the timings files, byte for byte; the commit the results
name aside: it differs by construction) and whether what the DAG reports is the same: every group's accuracies,
the Answer, GRPO's rewards (`same_results`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stage_seconds_snakemake(repo: Path) -> dict[str, float]:
    """Seconds per rule, summed over its jobs, from Snakemake's log (with --cores > 1 jobs overlap: the sum can
    exceed the wall time)."""
    log = max((repo / ".snakemake/log").glob("*.snakemake.log"))
    started, totals, when = {}, defaultdict(float), None
    for line in log.read_text().splitlines():
        if m := re.fullmatch(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line.strip()):
            when = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"\s*jobid: (\d+)", line):
            started[m.group(1)] = when
        elif m := re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line.strip()):
            totals[m.group(2)] += (when - started[m.group(1)]).total_seconds()
    return dict(totals)


def largest_job_rss(stop: threading.Event, found: list[int]) -> None:
    """Polls every process's peak RSS (VmHWM) twice a second until `stop`, keeping the largest among `gsm8k`
    processes in found[0] (MiB): with warm starts (gsm8k_pipeline.warm) the stages are the warm-start server's
    children, not the engine's, so the engine's rusage no longer sees them."""
    while not stop.wait(0.5):
        for proc in Path("/proc").iterdir():
            try:
                if b"gsm8k" not in (proc / "cmdline").read_bytes():
                    continue
                status = (proc / "status").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
                continue
            if m := re.search(r"^VmHWM:\s+(\d+) kB", status, re.M):
                found[0] = max(found[0], round(int(m.group(1)) / 1024))


def run_engine(cmd: list[str], repo: Path, env: dict, on_line=None) -> int:
    """Runs the engine; returns the peak RSS in MiB of its largest process (the engine or one stage job: what
    rusage wait4 gathers, and the stages' own peaks, polled), and fails with the engine's log tail if it fails."""
    stop, polled = threading.Event(), [0]
    poller = threading.Thread(target=largest_job_rss, args=(stop, polled), daemon=True)
    poller.start()
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        if on_line:
            on_line(line)
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {repo}:\n{''.join(tail)}")
    return max(round(usage.ru_maxrss / 1024), polled[0])


def run_dvc(repo: Path, env: dict) -> tuple[dict[str, float], int]:
    """`dvc repro`, timing each stage from its `Running stage` line to the next (stages run one by one)."""
    totals, current = defaultdict(float), [None, time.perf_counter()]

    def on_line(line: str) -> None:
        if m := re.match(r"Running stage '([\w@-]+)'", line):
            now = time.perf_counter()
            if current[0]:
                totals[current[0].split("@")[0]] += now - current[1]
            current[:] = [m.group(1), now]

    peak = run_engine(["dvc", "repro"], repo, env, on_line)
    if current[0]:
        totals[current[0].split("@")[0]] += time.perf_counter() - current[1]
    return dict(totals), peak


def job_timings(repo: Path) -> dict:
    """What the jobs' timings files say: per kind of job (eval, or the training stage), how many jobs, their
    process seconds and start-up seconds (summed; start-up where the code marks it), and the evals' passes
    (greedy, the calculator's, the sampled one the maj@k and pass@k protocols share), summed."""
    kinds: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "process_seconds": 0.0, "startup_seconds": 0.0})
    passes = defaultdict(float)
    found = [*repo.glob("metrics/eval/*/timings.json"), *repo.glob("metrics/tune/*/*/timings.json")]
    for path in sorted([*found, *repo.glob("models/**/timings.json")]):
        clock = json.loads(path.read_text())
        # metrics/eval/<model>/…, metrics/tune/<method>_<budget>/<candidate>/… (the learning-rate candidates'
        # validation evals), models/<stage>/… or models/tune_<method>/… (the candidates' training)
        where = path.relative_to(repo).parts
        if where[0] == "metrics":
            kind = "eval" if where[1] == "eval" else "tune_eval"
        else:
            kind = where[1]  # the stage: prep_sft, grpo, tune_grpo, …
        k = kinds[kind]
        k["jobs"] += 1
        k["process_seconds"] += clock.get("process_seconds") or 0.0
        k["startup_seconds"] += clock.get("startup_seconds") or 0.0
        if kind == "eval":
            passes["greedy"] += clock.get("seconds") or 0.0
            boosters = clock.get("boosters", {})
            passes["calculator"] += boosters.get("calculator", {}).get("seconds") or 0.0
            # maj@k, pass@1 and pass@k are read off one sampled pass, each carrying its seconds
            sampled = [b.get("seconds") or 0.0 for n, b in boosters.items() if n != "calculator"]
            passes["sampled"] += sampled[0] if sampled else 0.0
    return {
        "per_kind": {k: {n: round(v, 1) for n, v in d.items()} for k, d in sorted(kinds.items())},
        "eval_pass_seconds": {k: round(v, 1) for k, v in passes.items()},
    }


def commit(repo: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()


def build(source: Path, where: Path, engine_name: str, cores: int) -> dict:
    """The default DAG of `source` (a tree of this repo), from nothing, in a checkout at `where`."""
    import yaml

    from support.checkout import make_checkout

    repo = make_checkout(where, yaml.safe_load((source / "params.yaml").read_text()), source=source)
    env = os.environ | {"PYTHONPATH": str(repo / "src")}  # this tree's code, not the installed package's
    if not (repo / "src/gsm8k_pipeline/warm.py").exists():
        # A tree from before warm starts: the installed console script imports gsm8k_pipeline.warm, which its
        # package lacks, so its jobs run its own dispatcher, as its console script did.
        shim = repo.parent / f"{repo.name}-bin"
        shim.mkdir()
        (shim / "gsm8k").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gsm8k_pipeline.cli "$@"\n')
        (shim / "gsm8k").chmod(0o755)
        env["PATH"] = f"{shim}:{env['PATH']}"
    started = time.perf_counter()
    if engine_name == "snakemake":
        peak = run_engine(["snakemake", "--cores", str(cores), "metrics/all.json"], repo, env)
        stages = stage_seconds_snakemake(repo)
    else:
        stages, peak = run_dvc(repo, env)
    wall = time.perf_counter() - started
    return {"repo": repo, "wall": wall, "stages": stages, "peak_rss_mib": peak}


def report(run: dict, engine_name: str, cores: int) -> dict:
    import yaml

    from gsm8k_pipeline import selected

    repo = run["repo"]
    results = json.loads((repo / "metrics/all.json").read_text())
    accuracy = {r["id"]: r["accuracy"] for r in results["models"].values()}
    trained = {k: v for k, v in accuracy.items() if k != "base"}
    prep_answer = results["models"]["prep_sft"]["answer_proportion"]
    rewards = results["grpo_reward"]
    board = (repo / "metrics/LEADERBOARD.md").read_text()
    answer = board[board.index("## Answer") : board.index("## Methods by budget")].strip()
    # Issue 12's bar for the test-time boosters: every eval that params eval.boosters.models selects carries
    # greedy, calculator and maj@k (the others greedy only), and the best group's best booster beats its greedy
    # accuracy with an interval clear of zero.
    evals = {m: json.loads((repo / "metrics/eval" / f"{m}.json").read_text()) for m in accuracy}
    patterns = yaml.safe_load((repo / "params.yaml").read_text())["eval"]["boosters"].get("models", ["*"])
    boosters = results["boosters"]
    best_group = max(results["groups"], key=lambda g: results["groups"][g]["mean"])
    best_gain = boosters[best_group]["gain"]
    checks = {
        "base_at_most_5pct": accuracy["base"] <= 0.05,
        "every_selected_eval_has_greedy_calculator_and_maj_at_k": all(
            "accuracy" in e
            and (
                "calculator" in e.get("boosters", {}) and any(k.startswith("maj@") for k in e.get("boosters", {}))
                if selected(m, patterns)
                else "boosters" not in e
            )
            for m, e in evals.items()
        ),
        "best_models_booster_gain_interval_above_zero": best_gain["ci95"][0] > 0,
        "best_trained_at_least_25pct": max(trained.values()) >= 0.25,
        "prep_answer_proportion_at_least_90pct": prep_answer >= 0.90,
        "grpo_reward_rising_in_every_run": all(t["last"] > t["first"] for t in rewards.values()),
        "leaderboard_opens_with_the_answer": board.startswith("# Leaderboard\n\n## Answer"),
    }
    stages = run["stages"]
    total = sum(stages.values())
    return {
        "engine": engine_name,
        "cores": cores,
        "wall_seconds": round(run["wall"], 1),
        "stage_share": {
            k: f"{v:.0f} s ({100 * v / total:.0f} %)" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
        },
        "jobs": job_timings(repo),
        "peak_rss_mib": run["peak_rss_mib"],
        "groups": {
            k: {"mean": round(g["mean"], 4), "ci95": [round(x, 4) for x in g["ci95"]], "per_seed": g["per_seed"]}
            for k, g in results["groups"].items()
        },
        "prep_answer_proportion": prep_answer,
        "grpo_reward": rewards,
        "boosters": {
            g: {
                "best": b.get("best"),
                "gain": b.get("gain"),
                "protocols": {
                    n: {"mean": round(p["mean"], 4), "ci95": [round(x, 4) for x in p["ci95"]]}
                    for n, p in b["protocols"].items()
                },
            }
            for g, b in boosters.items()
        },
        "best_group": best_group,
        "lm_eval": results["lm_eval"],
        "answer": answer,
        "checks": checks,
        "repo": str(repo),
    }


def identical(before: Path, after: Path) -> list[str]:
    """The outputs that differ between two builds (support.checkout.outputs: all but the timings files), the
    commit each results record names set aside."""
    from support.checkout import outputs

    old, new = commit(before).encode(), commit(after).encode()
    a, b = outputs(before), outputs(after)
    return [k for k in sorted(set(a) | set(b)) if a.get(k, b"").replace(old, new) != b.get(k)]


def libraries_compiled() -> bool:
    """Whether a job's imports find bytecode: Python writes it itself unless PYTHONDONTWRITEBYTECODE is set
    (this sandbox sets it), and then only `uv sync --compile-bytecode` has."""
    import importlib.util

    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return True
    spec = importlib.util.find_spec("transformers")
    return spec is not None and Path(importlib.util.cache_from_source(spec.origin)).exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("snakemake", "dvc"), default="snakemake")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--before", metavar="REF", help="build this git ref's tree first, then compare")
    parser.add_argument("--keep", type=Path, default=None, help="build here instead of a temp dir")
    args = parser.parse_args()

    compiled = libraries_compiled()
    if not compiled:
        # Every job would compile torch's and transformers' sources again (6-7 s a job here): a figure of
        # the environment, not of the DAG. The README's command compiles them once (uv sync --compile-bytecode).
        sys.exit(
            "bench/default_dag.py: PYTHONDONTWRITEBYTECODE is set and the libraries have no bytecode: "
            "run `uv sync --compile-bytecode` first"
        )
    where = args.keep or Path(tempfile.mkdtemp(prefix="gsm8k-default-"))
    result = {"machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}}
    if args.before:
        source = where / "before-src"
        source.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", args.before], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        before = build(source, where / "before", args.engine, args.cores)
        result["before"] = {"ref": args.before, **report(before, args.engine, args.cores)}
    after = build(REPO, where / "after", args.engine, args.cores)
    result["after"] = {"ref": "working tree", **report(after, args.engine, args.cores)}
    if args.before:
        result["outputs_differing"] = identical(before["repo"], after["repo"])
        # What the DAG reports, side by side: every model's greedy accuracy, every group, the Answer.
        result["same_results"] = {
            key: result["before"][key] == result["after"][key] for key in ("groups", "answer", "grpo_reward")
        }
        result["speed_up"] = round(before["wall"] / after["wall"], 2)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    sys.exit(0 if all(result["after"]["checks"].values()) else 1)


if __name__ == "__main__":
    main()
