"""`leaderboard` stage → metrics/all.json, metrics/LEADERBOARD.md, metrics/accuracy_vs_budget.{csv,png},
metrics/grpo_reward.png, metrics/answer.rst (the front page of `snakemake --report`), and
metrics/timings.json (what the boosters cost: the only wall-clock figures, kept out of the others).

Every evaluated model is a record (results.record). Each (method, budget) is trained once per seed; its
accuracy is the mean over seeds with a 95 % two-level bootstrap interval (seeds, then problems: stats.py).
The research questions are paired differences at every budget — GRPO − SFT, and SFT on GRPO's traces −
SFT on the original solutions — and LEADERBOARD.md opens with their Answer, saying "the data can't tell"
wherever the interval spans zero.

Here: what the stage computes and writes. The text of LEADERBOARD.md and answer.rst is sections.py's, the
boosters' table boosters.py's, the plots plots.py's — code no other stage runs.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import METHODS, SHARED, STAGES, PipelineError, RunId, model_ids, timings
from ..fileio import atomic_write_json, atomic_write_text
from ..results import record
from . import boosters as booster_table
from . import sections
from .plots import plot_accuracy, plot_rewards


@dataclass(frozen=True)
class LeaderboardConfig:
    eval_dir: Path = Path("metrics/eval")
    out_dir: Path = Path("metrics")
    models_dir: Path = Path("models")  # GRPO's training logs, for the reward curves
    select_dir: Path | None = None  # the learning rates chosen on validation; None: eval_dir's sibling select/

    @property
    def selections(self) -> Path:
        return self.select_dir or self.eval_dir.parent / "select"


def git_commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _correct(eval_dir: Path, model_id: str) -> list[bool]:
    import pandas as pd

    return pd.read_csv(eval_dir / model_id / "debug.csv")["correct"].astype(bool).tolist()


def aggregate(params: dict, eval_dir: Path) -> tuple[dict, dict]:
    """(groups, comparisons): per (method, budget) the bootstrap accuracy over seeds; per question and
    budget the bootstrap difference. Every run is scored on the same problems in the same order."""
    from ..stats import bootstrap_accuracy, bootstrap_difference

    seeds = params["seeds"]
    runs = RunId.every(params)
    groups = {run.group: (run.method, run.budget) for run in runs} | {m: (m, None) for m in SHARED}
    matrices = {
        key: [_correct(eval_dir, str(r)) for r in runs if r.group == key] or [_correct(eval_dir, key)] for key in groups
    }
    groups = {
        key: {
            "method": method,
            "budget": budget,
            "seeds": seeds if budget is not None else [],
            "n": len(matrices[key][0]),
            **bootstrap_accuracy(matrices[key]),
        }
        for key, (method, budget) in groups.items()
    }
    comparisons = {
        f"{first}_vs_{second}_{b}": {
            "first": first,
            "second": second,
            "budget": b,
            **bootstrap_difference(matrices[f"{first}_{b}"], matrices[f"{second}_{b}"]),
        }
        for first, second, _ in sections.QUESTIONS
        for b in params["budgets"]
    }
    return groups, comparisons


def reward_trends(params: dict, models_dir: Path) -> dict:
    """Per GRPO run: its logged mean reward by step, and whether it rose. Consecutive steps see different
    problems, and on the tiny default which problems a step drew moves its reward more than learning does
    (two runs with a 10x different learning rate logged the same step-by-step pattern). So "rose" compares
    the first and the last epoch — the same problems, in another order — when the run has several; with
    one epoch only the first and last quarter of steps can be compared, a test confounded by difficulty."""
    import math

    import pandas as pd

    trends = {}
    for b in params["budgets"]:
        for s in params["seeds"]:
            log = pd.read_csv(models_dir / "grpo" / str(b) / f"s{s}" / "train_log.csv")
            rows = log.dropna(subset=["reward"]) if "reward" in log else log.iloc[0:0]
            rewards, epochs = rows["reward"].tolist(), rows["epoch"].tolist()
            last_epoch = math.ceil(max(epochs)) if epochs else 0
            if last_epoch >= 2:
                first = [r for r, e in zip(rewards, epochs) if e <= 1 + 1e-9]
                last = [r for r, e in zip(rewards, epochs) if e > last_epoch - 1 + 1e-9]
                compared = "first vs last epoch (same problems)"
            else:
                quarter = max(1, len(rewards) // 4)
                first, last = rewards[:quarter], rewards[-quarter:]
                compared = "first vs last quarter of steps (different problems)"
            mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
            trends[str(RunId("grpo", b, s))] = {
                "steps": rows["step"].astype(int).tolist(),
                "reward": rewards,
                "first": mean(first),
                "last": mean(last),
                "compared": compared,
            }
    return trends


def selections(params: dict, select_dir: Path) -> dict:
    """Per method and budget (`<method>_<budget>`), its learning-rate selection on validation (select.py):
    every candidate's validation accuracy, the chosen rate, whether it sits at the grid's edge. Results
    published before the selection existed have none: {} for them."""
    found = {}
    for method in METHODS:
        for b in params["budgets"]:
            path = select_dir / f"{method}_{b}.json"
            if path.is_file():
                found[f"{method}_{b}"] = json.loads(path.read_text())
    return found


def main(params: dict, config: LeaderboardConfig = LeaderboardConfig()) -> list[dict]:
    import pandas as pd

    commit = git_commit()
    ids = model_ids(params)
    missing = [str(config.eval_dir / f"{m}.json") for m in ids if not (config.eval_dir / f"{m}.json").is_file()]
    if missing:
        raise PipelineError(
            f"no eval metrics for {len(missing)} model(s): {', '.join(missing)} (run the eval stages first)"
        )
    metrics = {m: json.loads((config.eval_dir / f"{m}.json").read_text()) for m in ids}
    records = [record(metrics[m], params, commit) for m in ids]
    harness = {m: metrics[m]["lm_eval"] for m in ids if "lm_eval" in metrics[m]}  # lm-eval's numbers, where run
    groups, comparisons = aggregate(params, config.eval_dir)
    boosters = booster_table.aggregate(groups, config.eval_dir)
    trends = reward_trends(params, config.models_dir)
    selection = selections(params, config.selections)
    curve = pd.DataFrame(
        [
            {"method": r["method"], "budget": r["budget"], "seed": r["seed"], "accuracy": r["accuracy"]}
            for r in records
            if r["budget"] is not None
        ]
    )
    # The files are one set: a run that fails part-way (a full disk) must not leave new files beside old
    # ones, which would look like a finished leaderboard. None is left until all are written.
    outputs = [config.out_dir / name for name in OUTPUTS]
    for path in outputs:
        path.unlink(missing_ok=True)
    try:
        _write(config, params, ids, metrics, records, harness, groups, comparisons, boosters, trends, curve, selection)
    except BaseException as exc:
        for path in outputs:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PipelineError(
                f"{exc.filename or config.out_dir}: cannot write the leaderboard ({exc.strerror}); "
                f"none of its files is left in {config.out_dir}"
            ) from None
        raise
    return records


# What the stage writes into its out_dir: the stage table's leaderboard outputs.
OUTPUTS = tuple(Path(path).name for path in STAGES["leaderboard"].outputs.values())


def _write(
    config, params, ids, metrics, records, harness, groups, comparisons, boosters, trends, curve, selection
) -> None:
    atomic_write_text(config.out_dir / "accuracy_vs_budget.csv", curve.to_csv(index=False))
    plot_accuracy(records, groups, config.out_dir / "accuracy_vs_budget.png")
    plot_rewards(trends, config.out_dir / "grpo_reward.png")
    contaminated = sections.contamination(records)
    atomic_write_text(
        config.out_dir / "LEADERBOARD.md",
        sections.markdown(records, groups, comparisons, len(params["seeds"]), contaminated, boosters, selection)
        + sections.lm_eval_table(harness, {m: metrics[m]["accuracy"] for m in ids}),
    )
    atomic_write_text(
        config.out_dir / "answer.rst",
        sections.rst(
            groups,
            comparisons,
            len(params["seeds"]),
            [config.out_dir / "accuracy_vs_budget.png", config.out_dir / "grpo_reward.png"],
            contaminated,
            selection,
        ),
    )
    # Keyed by model id, group and question (not lists), so `dvc metrics diff` compares every number.
    atomic_write_json(
        config.out_dir / "all.json",
        {
            "contamination": contaminated,  # top level, not only per model: one place to look
            "models": {r["id"]: r for r in records},
            "groups": groups,
            "comparisons": comparisons,
            "grpo_reward": {run: {k: t[k] for k in ("first", "last", "compared")} for run, t in trends.items()},
            "lm_eval": {m: sections.lm_eval_summary(h) for m, h in harness.items()},
            "boosters": boosters,
            "selection": selection,  # the learning rates chosen on validation, with every candidate's score
        },
    )
    timings.write(
        config.out_dir / timings.TIMINGS,
        {"boosters_seconds_per_eval": booster_table.time_cost(boosters, config.eval_dir)},
    )
