"""`gsm8k train-grpo`: the grpo stage."""

from __future__ import annotations

from pathlib import Path

from ..training import add_learning_rate, learning_rate
from . import add_stage, alias, output_dir, params_for, set_threads


def add_cli(sub) -> None:
    p = add_stage(sub, "train-grpo", "GRPO with TRL", replicated=True)
    p.add_argument(
        "--model",
        metavar="DIR",
        type=Path,
        default=Path("models/prep_sft/model"),
        help="the model folder to start from",
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        type=str,
        default=None,
        help="writes model/ and train_log.csv here (default: $OUTPUT_DIR, else models/grpo)",
    )
    p.add_argument(
        "--train-file", metavar="FILE", type=Path, default=Path("data/gsm8k/train.jsonl"), help="the problems"
    )
    p.add_argument(
        "--samples",
        metavar="N",
        type=int,
        default=None,
        help="problems to train on (default: $TRAIN_SAMPLES, else all)",
    )
    add_learning_rate(p)
    alias(p, "--base-model", "--model")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..guards import exclusive
    from ..train_grpo import GRPOStageConfig, main

    cli = {"run.samples": args.samples, "run.output_dir": args.output_dir, "seed": args.seed}
    params = params_for(args, "grpo", cli | {"run.learning_rate": learning_rate(args, "grpo")})
    folder = output_dir(params, "models/grpo")
    with exclusive(folder):  # before anything reads or clears its checkpoints
        set_threads(params)
        main(
            params,
            GRPOStageConfig(
                output_dir=folder, base_model=args.model, train_file=args.train_file, candidates=args.candidates
            ),
        )
    return 0
