"""`gsm8k generate-traces`: the traces stage, reasoning traces sampled from a GRPO model."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import PipelineError
from . import add_stage, alias, params_for, set_threads, split_output


def add_cli(sub) -> None:
    p = add_stage(sub, "generate-traces", "reasoning traces from a GRPO model", replicated=True)
    # Required, but checked by the handler: argparse would not count its hidden alias as given.
    p.add_argument(
        "--model", metavar="DIR", type=Path, default=None, help="the GRPO model folder to sample from (required)"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="the traces (JSONL); FILE.stats.json beside it (default: data/traces/traces.jsonl)",
    )
    p.add_argument(
        "--samples",
        metavar="N",
        type=int,
        default=None,
        help="the first N problems of the train split (default: $TRAIN_SAMPLES, else all)",
    )
    p.add_argument("--batch-size", metavar="N", type=int, default=None, help="default: traces.batch_size")
    p.add_argument("--max-attempts", metavar="N", type=int, default=None, help="default: traces.max_attempts")
    p.add_argument("--temperature", metavar="T", type=float, default=None, help="default: traces.temperature")
    # What --output replaced: a folder and a file name in it.
    p.add_argument("--output-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--output-file", default=None, help=argparse.SUPPRESS)
    alias(p, "--grpo-model", "--model")
    alias(p, "--num-samples", "--samples")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import json

    from ..guards import exclusive
    from ..traces import TracesConfig, main

    if args.model is None:
        raise PipelineError("--model DIR is required: the GRPO model folder to sample from")
    folder, name = split_output(args, "data/traces", "traces.jsonl")
    params = params_for(
        args,
        "traces",
        {
            "run.samples": args.samples,
            "traces.batch_size": args.batch_size,
            "traces.max_attempts": args.max_attempts,
            "traces.temperature": args.temperature,
            "seed": args.seed,
        },
    )
    with exclusive(Path(folder) / name):
        set_threads(params)
        stats = main(params, TracesConfig(grpo_model=args.model, output_dir=Path(folder), output_file=name))
    print(json.dumps(stats))
    return 0
