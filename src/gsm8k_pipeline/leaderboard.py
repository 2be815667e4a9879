"""`leaderboard` stage → metrics/all.json, metrics/LEADERBOARD.md, metrics/accuracy_vs_budget.{csv,png}.

One record per evaluated model; SFT vs GRPO by budget; SFT on traces vs SFT on the original solutions
at equal budget, with an exact McNemar test on the same test problems.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .dag import METHODS
from .errors import PipelineError
from .fileio import atomic_write_json, atomic_write_text
from .results import record


def model_ids(params: dict) -> list[str]:
    """Every model the DAG evaluates."""
    return ["base", "prep_sft"] + [f"{m}_{b}" for m in METHODS for b in params["budgets"]]


@dataclass(frozen=True)
class LeaderboardConfig:
    eval_dir: Path = Path("metrics/eval")
    out_dir: Path = Path("metrics")


def git_commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def mcnemar_exact(a: list[bool], b: list[bool]) -> dict:
    """Exact (binomial) McNemar test on paired outcomes of the same problems."""
    from scipy.stats import binomtest

    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_first_correct": only_a, "only_second_correct": only_b, "p_value": p}


def _correct(eval_dir: Path, model_id: str) -> list[bool]:
    import pandas as pd

    return pd.read_csv(eval_dir / model_id / "debug.csv")["correct"].astype(bool).tolist()


def _pct(r: dict) -> str:
    lo, hi = r["accuracy_ci95"]
    return f"{100 * r['accuracy']:.1f} % ({100 * lo:.1f}–{100 * hi:.1f})"


def render_markdown(records: list[dict], comparisons: list[dict]) -> str:
    by_id = {r["id"]: r for r in records}
    lines = ["# Leaderboard", "", "| rank | model | method | budget | accuracy (95 % CI) | answer | thinking | n |",
             "|---|---|---|---|---|---|---|---|"]
    for rank, r in enumerate(sorted(records, key=lambda r: -r["accuracy"]), 1):
        lines.append(f"| {rank} | {r['id']} | {r['method']} | {r['budget'] or '—'} | {_pct(r)} | "
                     f"{r['answer_proportion']:.2f} | {r['thinking_proportion']:.2f} | {r['n']} |")
    budgets = sorted({r["budget"] for r in records if r["budget"] is not None})
    methods = [m for m in METHODS if any(r["method"] == m for r in records)]
    lines += ["", "## By budget", "", "| budget | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for b in budgets:
        cells = [_pct(by_id[f"{m}_{b}"]) if f"{m}_{b}" in by_id else "—" for m in methods]
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    if comparisons:
        lines += ["", "## SFT on GRPO traces vs SFT on the original solutions (exact McNemar, same problems)", "",
                  "| budget | sft_from_traces | full_sft | only traces right | only original right | p |",
                  "|---|---|---|---|---|---|"]
        for c in comparisons:
            lines.append(f"| {c['budget']} | {_pct(by_id[c['first']])} | {_pct(by_id[c['second']])} | "
                         f"{c['only_first_correct']} | {c['only_second_correct']} | {c['p_value']:.3g} |")
    return "\n".join(lines) + "\n"


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in sorted({r["method"] for r in records if r["budget"] is not None}):
        points = sorted((r["budget"], r["accuracy"]) for r in records if r["method"] == method)
        ax.plot([b for b, _ in points], [a for _, a in points], marker="o", label=method)
    references = [r for r in records if r["budget"] is None]  # base, prep_sft: budget-free lines
    for k, r in enumerate(references):
        ax.axhline(r["accuracy"], linestyle="--", linewidth=1, color=f"C{k + 3}", label=r["id"])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sample budget")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, metadata={"Software": None})  # no version stamp: same data, same bytes
    tmp.replace(path)
    plt.close(fig)


def main(params: dict, config: LeaderboardConfig = LeaderboardConfig()) -> list[dict]:
    import pandas as pd

    commit = git_commit()
    ids = model_ids(params)
    missing = [str(config.eval_dir / f"{m}.json") for m in ids if not (config.eval_dir / f"{m}.json").is_file()]
    if missing:
        raise PipelineError(f"no eval metrics for {len(missing)} model(s): {', '.join(missing)} (run the eval stages first)")
    records = [record(json.loads((config.eval_dir / f"{m}.json").read_text()), params, commit) for m in ids]
    comparisons = []
    for r in records:
        if r["method"] == "sft_from_traces" and f"full_sft_{r['budget']}" in ids:
            other = f"full_sft_{r['budget']}"
            test = mcnemar_exact(_correct(config.eval_dir, r["id"]), _correct(config.eval_dir, other))
            comparisons.append({"budget": r["budget"], "first": r["id"], "second": other, **test})
    curve = pd.DataFrame([{"method": r["method"], "budget": r["budget"], "accuracy": r["accuracy"]}
                          for r in records if r["budget"] is not None])
    atomic_write_text(config.out_dir / "accuracy_vs_budget.csv", curve.to_csv(index=False))
    plot(records, config.out_dir / "accuracy_vs_budget.png")
    atomic_write_text(config.out_dir / "LEADERBOARD.md", render_markdown(records, comparisons))
    # Keyed by model id and budget (not lists), so `dvc metrics diff` compares every number.
    atomic_write_json(config.out_dir / "all.json", {
        "models": {r["id"]: r for r in records},
        "mcnemar": {f"sft_from_traces_vs_full_sft_{c['budget']}": c for c in comparisons},
    })
    return records
