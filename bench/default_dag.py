"""The embedded default, end to end: wall time, peak memory, and whether it learns.

    uv run python bench/default_dag.py [--engine snakemake|dvc] [--cores 2] [--keep DIR]

Copies the pipeline into a fresh temp git repo with the shipped params.yaml, builds the whole DAG from
nothing with the chosen engine, then checks issue 3's bar: base accuracy ≤ 5 %, best trained model
≥ 25 %, prep_sft answer_proportion ≥ 90 %, GRPO mean reward rising (last quarter of logged steps above
the first). Prints JSON; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def reward_trend(log_csv: Path) -> dict:
    import pandas as pd

    rewards = pd.read_csv(log_csv)["reward"].dropna().tolist()
    quarter = max(1, len(rewards) // 4)
    first, last = sum(rewards[:quarter]) / quarter, sum(rewards[-quarter:]) / quarter
    return {"first_quarter": round(first, 3), "last_quarter": round(last, 3), "rising": last > first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("snakemake", "dvc"), default="snakemake")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="build here instead of a temp dir")
    args = parser.parse_args()

    import yaml
    from conftest import make_checkout, run

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    where = args.keep or Path(tempfile.mkdtemp(prefix="gsm8k-default-"))
    repo = make_checkout(where, params)
    cmd = (["snakemake", "--cores", str(args.cores), "metrics/all.json"] if args.engine == "snakemake"
           else ["dvc", "repro"])
    started = time.perf_counter()
    run(cmd, repo)
    wall = time.perf_counter() - started

    board = list(json.loads((repo / "metrics/all.json").read_text())["models"].values())
    accuracy = {r["id"]: r["accuracy"] for r in board}
    trained = {k: v for k, v in accuracy.items() if k != "base"}
    prep_answer = next(r["answer_proportion"] for r in board if r["id"] == "prep_sft")
    grpo = {b: reward_trend(repo / f"models/grpo/{b}/train_log.csv") for b in params["budgets"]}
    checks = {
        "base_at_most_5pct": accuracy["base"] <= 0.05,
        "best_trained_at_least_25pct": max(trained.values()) >= 0.25,
        "prep_answer_proportion_at_least_90pct": prep_answer >= 0.90,
        "grpo_reward_rising": all(t["rising"] for t in grpo.values()),
    }
    result = {
        "engine": args.engine,
        "cores": args.cores,
        "wall_seconds": round(wall, 1),
        # The largest single stage process; the engines' own footprint is small beside it.
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "accuracy": accuracy,
        "prep_answer_proportion": prep_answer,
        "grpo_reward": grpo,
        "checks": checks,
        "repo": str(repo),
    }
    print(json.dumps(result, indent=2))
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
