"""The leaderboard's plots: accuracy against budget per method, and GRPO's reward curves."""

from __future__ import annotations

from pathlib import Path

from .. import METHODS, SHARED


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100, metadata={"Software": None})  # no version stamp: same data, same bytes
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves no part of it
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
        ax.errorbar(
            [b for b, _, _ in means],
            [m for _, m, _ in means],
            yerr=[[m - ci[0] for _, m, ci in means], [ci[1] - m for _, m, ci in means]],
            marker="o",
            capsize=3,
            color=color,
            label=f"{method} (mean, 95 % CI)",
        )
    for k, name in enumerate(SHARED):
        ax.axhline(groups[name]["mean"], linestyle="--", linewidth=1, color=f"C{k + 4}", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sample budget")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    _save(fig, path)


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
