"""`gsm8k leaderboard`: the leaderboard stage, metrics/all.json, LEADERBOARD.md and the plots."""

from __future__ import annotations

from pathlib import Path

from . import add_stage, alias, params_for


def add_cli(sub) -> None:
    p = add_stage(sub, "leaderboard", "metrics/all.json, LEADERBOARD.md, plots")
    p.add_argument(
        "--eval-dir", metavar="DIR", type=Path, default=Path("metrics/eval"), help="the eval stages' metrics folder"
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        type=Path,
        default=Path("metrics"),
        help="writes all.json, LEADERBOARD.md, the plots here",
    )
    alias(p, "--out-dir", "--output-dir")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..leaderboard import LeaderboardConfig, main

    records = main(params_for(args, "leaderboard"), LeaderboardConfig(eval_dir=args.eval_dir, out_dir=args.output_dir))
    best = max(records, key=lambda r: r["accuracy"])
    print(f"{len(records)} models; best {best['id']} at {best['accuracy']:.4f}")
    return 0
