"""`gsm8k select`: the select_<method> stages, a method's learning rate chosen on the validation split."""

from __future__ import annotations

from pathlib import Path

from .. import METHODS
from . import add_stage, params_for


def add_cli(sub) -> None:
    p = add_stage(sub, "select", "choose a method's learning rate from its candidates' validation accuracy")
    p.add_argument("--method", choices=METHODS, required=True, help="the method whose grid was tuned")
    p.add_argument("--budget", metavar="N", type=int, required=True, help="the budget its candidates trained at")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        type=Path,
        default=None,
        help="the selection file (default: metrics/select/<method>_<budget>.json)",
    )
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..select import main

    result = main(params_for(args, f"select_{args.method}"), args.method, args.budget, args.output)
    scores = ", ".join(f"{c['learning_rate']:g}: {c['accuracy']:.4f}" for c in result["candidates"])
    edge = " (at the edge of the grid)" if result["at_edge"] else ""
    print(f"{args.method} at budget {args.budget}: learning rate {result['chosen']:g}{edge}; validation {scores}")
    return 0
