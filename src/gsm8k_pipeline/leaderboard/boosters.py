"""The leaderboard's "Test-time boosters" section: per (method, budget), greedy against each booster the
eval stage scored (gsm8k_pipeline/boosters.py), means over the runs that scored them (params eval.boosters.models)
with 95 % bootstrap intervals, and the best booster's gain over greedy on the same runs and problems (stats.bootstrap_same_runs).

"Best" is chosen among the boosters that need no answer key (calculator, maj@k); pass@k counts a problem
solved when any of k samples is right, which only a verifier could act on, so it is shown but never "best".
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import RunId

TIME_COST = "metrics/timings.json"  # where the leaderboard writes what each protocol costs (time_cost)


def _columns(eval_dir: Path, model_id: str, names: list[str]) -> dict[str, list[float]]:
    import pandas as pd

    debug = pd.read_csv(eval_dir / model_id / "debug.csv")
    return {
        "greedy": debug["correct"].astype(float).tolist(),
        **{name: debug[f"correct:{name}"].astype(float).tolist() for name in names},
    }


def aggregate(groups: dict, eval_dir: Path) -> dict:
    """Per group of `groups` (the leaderboard's aggregate: a method and budget over seeds, or one shared model):
    each protocol's bootstrap accuracy, and the best booster's gain over greedy, over the group's runs that
    scored boosters (params eval.boosters.models: by default seed 0). {} when no eval scored them."""
    from ..stats import bootstrap_accuracy, bootstrap_same_runs

    out = {}
    for key, group in groups.items():
        runs = [str(RunId(group["method"], group["budget"], s)) for s in group["seeds"]] or [key]
        scored = {run: json.loads((eval_dir / f"{run}.json").read_text()).get("boosters") for run in runs}
        runs = [run for run in runs if scored[run]]
        if not runs:
            continue
        names = list(scored[runs[0]])
        columns = [_columns(eval_dir, run, names) for run in runs]
        protocols = {name: bootstrap_accuracy([c[name] for c in columns]) for name in ["greedy", *names]}
        usable = [n for n in names if not n.startswith("pass@")]
        entry = {"method": group["method"], "budget": group["budget"], "runs": runs, "protocols": protocols}
        if usable:
            best = max(usable, key=lambda n: protocols[n]["mean"])  # first listed wins a tie
            entry["best"] = best
            entry["gain"] = bootstrap_same_runs([c[best] for c in columns], [c["greedy"] for c in columns])
        out[key] = entry
    return out


def render(boosters: dict) -> list[str]:
    """The Markdown section (empty when no booster was scored)."""
    if not boosters:
        return []
    names = list(next(iter(boosters.values()))["protocols"])
    lines = [
        "## Test-time boosters",
        "",
        "Each model's greedy accuracy against the boosters scored on the same problems (mean over the runs "
        "that scored them, params `eval.boosters.models`: the `seeds` column; 95 % bootstrap interval, "
        "two-level over several runs), and the best of calculator and maj@k minus greedy on the same runs and "
        "problems. pass@k is an oracle (any of k samples right) and is never the best.",
        "",
        "| method | budget | seeds | " + " | ".join(names) + " | best booster − greedy (95 % CI, p) |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for b in sorted(boosters.values(), key=lambda b: (b["budget"] or 0, b["method"])):
        cells = [
            f"{100 * b['protocols'][n]['mean']:.1f} ({100 * b['protocols'][n]['ci95'][0]:.1f}–"
            f"{100 * b['protocols'][n]['ci95'][1]:.1f})"
            for n in names
        ]
        gain = "—"
        if "gain" in b:
            g = b["gain"]
            gain = (
                f"{b['best']}: {100 * g['difference']:+.1f} ({100 * g['ci95'][0]:+.1f} to "
                f"{100 * g['ci95'][1]:+.1f}, p = {g['p_value']:.2g})"
            )
        seeds = ", ".join(str(r.seed) for r in map(RunId.parse, b["runs"]) if r) or "—"
        lines.append(f"| {b['method']} | {b['budget'] or '—'} | {seeds} | " + " | ".join(cells) + f" | {gain} |")
    lines += [
        "",
        f"What each protocol costs, in seconds per eval: `{TIME_COST}` (wall-clock figures stay out of "
        "this file, which is the same bytes on any machine).",
        "",
    ]
    return lines


def time_cost(boosters: dict, eval_dir: Path) -> dict:
    """Seconds per eval of each protocol, the mean over every model the boosters table covers, from the
    evals' timings files (the sampled protocols share one pass): the leaderboard's timings file."""
    from ..timings import TIMINGS

    seconds: dict[str, list[float]] = {}
    for b in boosters.values():
        for run in b["runs"]:
            clock = json.loads((eval_dir / run / TIMINGS).read_text())
            for name in b["protocols"]:
                seconds.setdefault(name, []).append(
                    clock["seconds"] if name == "greedy" else clock["boosters"][name]["seconds"]
                )
    return {name: round(sum(s) / len(s), 3) for name, s in seconds.items()}
