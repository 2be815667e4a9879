"""`leaderboard` stage → metrics/all.json, metrics/LEADERBOARD.md, metrics/accuracy_vs_budget.{csv,png},
metrics/grpo_reward.png, metrics/answer.rst (the front page of `snakemake --report`), and
metrics/timings.json (what the boosters cost: the only wall-clock figures, kept out of the others).

Every evaluated model is a record (results.record). Each (method, budget) is trained once per seed; its
accuracy is the mean over seeds with a 95 % two-level bootstrap interval (seeds, then problems: stats.py).
The research questions are paired differences at every budget — GRPO − SFT, and SFT on GRPO's traces −
SFT on the original solutions — and LEADERBOARD.md opens with their Answer, saying "the data can't tell"
wherever the interval spans zero.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import contamination, timings
from .dag import METHODS
from .errors import PipelineError
from .fileio import atomic_write_json, atomic_write_text
from .harness import render_markdown as render_harness, summary as harness_summary
from .leaderboard_boosters import aggregate as aggregate_boosters
from .leaderboard_boosters import render as render_boosters
from .leaderboard_boosters import time_cost
from .results import record

# (first, second, question): each is answered at every budget by first − second.
QUESTIONS = [
    ("grpo", "full_sft", "GRPO vs SFT on the original solutions"),
    ("sft_from_traces", "full_sft", "SFT on GRPO's reasoning traces vs SFT on the original solutions"),
]
SHARED = ["base", "prep_sft"]  # one model each, no budget, no seed


def model_ids(params: dict) -> list[str]:
    """Every model the DAG evaluates."""
    return SHARED + [f"{m}_{b}_s{s}" for m in METHODS for b in params["budgets"] for s in params["seeds"]]


@dataclass(frozen=True)
class LeaderboardConfig:
    eval_dir: Path = Path("metrics/eval")
    out_dir: Path = Path("metrics")
    models_dir: Path = Path("models")  # GRPO's training logs, for the reward curves


def git_commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _correct(eval_dir: Path, model_id: str) -> list[bool]:
    import pandas as pd

    return pd.read_csv(eval_dir / model_id / "debug.csv")["correct"].astype(bool).tolist()


def aggregate(params: dict, eval_dir: Path) -> tuple[dict, dict]:
    """(groups, comparisons): per (method, budget) the bootstrap accuracy over seeds; per question and
    budget the bootstrap difference. Every run is scored on the same problems in the same order."""
    from .stats import bootstrap_accuracy, bootstrap_difference

    seeds = params["seeds"]
    matrices = {f"{m}_{b}": [_correct(eval_dir, f"{m}_{b}_s{s}") for s in seeds]
                for m in METHODS for b in params["budgets"]}
    matrices |= {m: [_correct(eval_dir, m)] for m in SHARED}
    groups = {}
    for key, rows in matrices.items():
        method, _, budget = key.rpartition("_") if key not in SHARED else (key, "", None)
        groups[key] = {"method": method, "budget": int(budget) if budget else None,
                       "seeds": seeds if key not in SHARED else [], "n": len(rows[0]), **bootstrap_accuracy(rows)}
    comparisons = {
        f"{first}_vs_{second}_{b}": {"first": first, "second": second, "budget": b,
                                     **bootstrap_difference(matrices[f"{first}_{b}"], matrices[f"{second}_{b}"])}
        for first, second, _ in QUESTIONS for b in params["budgets"]
    }
    return groups, comparisons


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def verdict(c: dict) -> str:
    lo, hi = c["ci95"]
    if lo > 0:
        return f"{c['first']} is better"
    if hi < 0:
        return f"{c['second']} is better"
    return "the data can't tell"


def render_answer(comparisons: dict, groups: dict, n_seeds: int) -> list[str]:
    n = next(iter(groups.values()))["n"]
    lines = ["## Answer", "",
             f"Differences in accuracy (percentage points), each a mean over {n_seeds} seed(s) per method on the "
             f"same {n} test problems, with a 95 % two-level bootstrap interval (seeds, then problems; paired by "
             "problem) and a bootstrap p-value for no difference.", ""]
    for first, second, question in QUESTIONS:
        parts = []
        for c in (c for c in comparisons.values() if c["first"] == first and c["second"] == second):
            lo, hi = c["ci95"]
            parts.append(f"at budget {c['budget']}, {first} − {second} = {_points(c['difference'])} "
                         f"(95 % CI {_points(lo)} to {_points(hi)}, p = {c['p_value']:.2g}): {verdict(c)}")
        lines.append(f"- **{question}:** " + "; ".join(parts) + ".")
    return lines + [""]


def _pct(mean: float, ci: list[float]) -> str:
    return f"{100 * mean:.1f} % ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})"


def render_markdown(records: list[dict], groups: dict, comparisons: dict, n_seeds: int,
                    contaminated: dict | None = None, boosters: dict | None = None) -> str:
    """`contaminated`: contamination.summary of the records; a warning above the Answer when it is loud.
    `boosters`: leaderboard_boosters.aggregate's, a table after the methods'."""
    notes = contamination.render(contaminated) if contaminated else []
    loud = contaminated is not None and contamination.is_loud(contaminated)
    lines = ["# Leaderboard", "", *(notes if loud else []), *render_answer(comparisons, groups, n_seeds)]
    lines += ["## Methods by budget (mean over seeds)", "",
              "| method | budget | accuracy (95 % CI) | per seed | n |", "|---|---|---|---|---|"]
    for g in sorted(groups.values(), key=lambda g: (g["budget"] or 0, g["method"])):
        per_seed = ", ".join(f"{100 * v:.1f}" for v in g["per_seed"]) if g["seeds"] else "—"
        lines.append(f"| {g['method']} | {g['budget'] or '—'} | {_pct(g['mean'], g['ci95'])} | {per_seed} | {g['n']} |")
    lines += ["", *render_boosters(boosters or {})]
    lines += ["## Every model", "",
              "| rank | model | method | budget | seed | accuracy (95 % CI, this run's problems) | answer | thinking | n |",
              "|---|---|---|---|---|---|---|---|---|"]
    for rank, r in enumerate(sorted(records, key=lambda r: -r["accuracy"]), 1):
        lines.append(f"| {rank} | {r['id']} | {r['method']} | {r['budget'] or '—'} | "
                     f"{'—' if r['seed'] is None else r['seed']} | {_pct(r['accuracy'], r['accuracy_ci95'])} | "
                     f"{r['answer_proportion']:.2f} | {r['thinking_proportion']:.2f} | {r['n']} |")
    if notes and not loud:  # all clear (or unknown): a note at the end, not above the Answer
        lines += ["", *notes[:-1]]
    return "\n".join(lines) + "\n"


def render_rst(groups: dict, comparisons: dict, n_seeds: int, images: list[Path],
               contaminated: dict | None = None) -> str:
    """The Answer, the methods table and the plots (inlined as data URIs) as reStructuredText: the
    workflow description of Snakemake's HTML report, so the report opens on the answer (and on a
    contamination warning, when there is one)."""
    import base64

    warning = contamination.render(contaminated) if contaminated and contamination.is_loud(contaminated) else []
    # The Answer's Markdown (bullets, **bold**) is also valid reST.
    lines = ["The answer", "==========", "", *warning, *render_answer(comparisons, groups, n_seeds)[2:]]
    lines += ["Methods by budget (mean over seeds)", "-----------------------------------", "",
              ".. list-table::", "   :header-rows: 1", "",
              "   * - method", "     - budget", "     - accuracy (95 % CI)", "     - per seed"]
    for g in sorted(groups.values(), key=lambda g: (g["budget"] or 0, g["method"])):
        per_seed = ", ".join(f"{100 * v:.1f}" for v in g["per_seed"]) if g["seeds"] else "—"
        lines += [f"   * - {g['method']}", f"     - {g['budget'] or '—'}", f"     - {_pct(g['mean'], g['ci95'])}",
                  f"     - {per_seed}"]
    lines += [""]
    for image in images:
        data = base64.b64encode(image.read_bytes()).decode()
        # docutils refuses lines over 10,000 characters; an image URI may continue on indented lines.
        lines += [".. image:: data:image/png;base64,", *(f"   {data[i:i + 76]}" for i in range(0, len(data), 76)),
                  f"   :alt: {image.stem}", ""]
    return "\n".join(lines)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, metadata={"Software": None})  # no version stamp: same data, same bytes
    tmp.replace(path)
    plt.close(fig)


def plot_accuracy(records: list[dict], groups: dict, path: Path) -> None:
    """Accuracy vs budget per method: each seed's run as a dot, the mean over seeds with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, method in enumerate(METHODS):
        color = f"C{k}"
        runs = [r for r in records if r["method"] == method]
        ax.scatter([r["budget"] for r in runs], [r["accuracy"] for r in runs], s=12, alpha=0.5, color=color)
        means = sorted((g["budget"], g["mean"], g["ci95"]) for g in groups.values() if g["method"] == method)
        ax.errorbar([b for b, _, _ in means], [m for _, m, _ in means],
                    yerr=[[m - ci[0] for _, m, ci in means], [ci[1] - m for _, m, ci in means]],
                    marker="o", capsize=3, color=color, label=f"{method} (mean, 95 % CI)")
    for k, name in enumerate(SHARED):
        ax.axhline(groups[name]["mean"], linestyle="--", linewidth=1, color=f"C{k + 4}", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sample budget")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    _save(fig, path)


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
            trends[f"grpo_{b}_s{s}"] = {"steps": rows["step"].astype(int).tolist(), "reward": rewards,
                                        "first": mean(first), "last": mean(last), "compared": compared}
    return trends


def plot_rewards(trends: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for run, t in sorted(trends.items()):
        ax.plot(t["steps"], t["reward"], linewidth=1, label=run)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean reward of the step's completions")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def main(params: dict, config: LeaderboardConfig = LeaderboardConfig()) -> list[dict]:
    import pandas as pd

    commit = git_commit()
    ids = model_ids(params)
    missing = [str(config.eval_dir / f"{m}.json") for m in ids if not (config.eval_dir / f"{m}.json").is_file()]
    if missing:
        raise PipelineError(f"no eval metrics for {len(missing)} model(s): {', '.join(missing)} (run the eval stages first)")
    metrics = {m: json.loads((config.eval_dir / f"{m}.json").read_text()) for m in ids}
    records = [record(metrics[m], params, commit) for m in ids]
    harness = {m: metrics[m]["lm_eval"] for m in ids if "lm_eval" in metrics[m]}  # lm-eval's numbers, where run
    groups, comparisons = aggregate(params, config.eval_dir)
    boosters = aggregate_boosters(groups, config.eval_dir)
    trends = reward_trends(params, config.models_dir)
    curve = pd.DataFrame([{"method": r["method"], "budget": r["budget"], "seed": r["seed"], "accuracy": r["accuracy"]}
                          for r in records if r["budget"] is not None])
    atomic_write_text(config.out_dir / "accuracy_vs_budget.csv", curve.to_csv(index=False))
    plot_accuracy(records, groups, config.out_dir / "accuracy_vs_budget.png")
    plot_rewards(trends, config.out_dir / "grpo_reward.png")
    contaminated = contamination.summary(records)
    atomic_write_text(config.out_dir / "LEADERBOARD.md",
                      render_markdown(records, groups, comparisons, len(params["seeds"]), contaminated, boosters)
                      + render_harness(harness, {m: metrics[m]["accuracy"] for m in ids}))
    atomic_write_text(config.out_dir / "answer.rst", render_rst(
        groups, comparisons, len(params["seeds"]),
        [config.out_dir / "accuracy_vs_budget.png", config.out_dir / "grpo_reward.png"], contaminated))
    # Keyed by model id, group and question (not lists), so `dvc metrics diff` compares every number.
    atomic_write_json(config.out_dir / "all.json", {
        "contamination": contaminated,  # top level, not only per model: one place to look
        "models": {r["id"]: r for r in records},
        "groups": groups,
        "comparisons": comparisons,
        "grpo_reward": {run: {k: t[k] for k in ("first", "last", "compared")} for run, t in trends.items()},
        "lm_eval": {m: harness_summary(h) for m, h in harness.items()},
        "boosters": boosters,
    })
    timings.write(config.out_dir / timings.TIMINGS, {"boosters_seconds_per_eval": time_cost(boosters, config.eval_dir)})
    return records
