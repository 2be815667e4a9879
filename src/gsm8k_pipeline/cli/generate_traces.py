"""`gsm8k generate-traces`: the traces stage, reasoning traces sampled from a GRPO model."""

from __future__ import annotations

from pathlib import Path

from . import add_stage, params_for, set_threads


def add_cli(sub) -> None:
    p = add_stage(sub, "generate-traces", "reasoning traces from a GRPO model", replicated=True)
    p.add_argument("--grpo-model", type=Path, required=True)
    p.add_argument("--output-dir", type=Path, default=Path("data/traces"))
    p.add_argument("--output-file", default="traces.jsonl")
    p.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="the first N problems of the train split (default: $TRAIN_SAMPLES, else all)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="default: traces.batch_size")
    p.add_argument("--max-attempts", type=int, default=None, help="default: traces.max_attempts")
    p.add_argument("--temperature", type=float, default=None, help="default: traces.temperature")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import json

    from ..guards import exclusive
    from ..traces import TracesConfig, main

    params = params_for(
        args,
        "traces",
        {
            "run.samples": args.num_samples,
            "traces.batch_size": args.batch_size,
            "traces.max_attempts": args.max_attempts,
            "traces.temperature": args.temperature,
            "seed": args.seed,
        },
    )
    with exclusive(args.output_dir / args.output_file):
        set_threads(params)
        stats = main(
            params, TracesConfig(grpo_model=args.grpo_model, output_dir=args.output_dir, output_file=args.output_file)
        )
    print(json.dumps(stats))
    return 0
