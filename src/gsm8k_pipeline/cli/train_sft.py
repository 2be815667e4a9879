"""`gsm8k train-sft`: the SFT stages (prep_sft; full_sft; sft_from_traces, with --traces-file)."""

from __future__ import annotations

from pathlib import Path

from ..training import add_learning_rate, learning_rate
from . import add_stage, alias, output_dir, params_for, set_threads


def add_cli(sub) -> None:
    p = add_stage(sub, "train-sft", "SFT (prep, full, or on traces) with TRL", replicated=True)
    p.add_argument(
        "--stage",
        choices=("prep", "full"),
        required=True,
        help="prep: prep_sft (params prep_sft); full: full_sft, or sft_from_traces with --traces-file",
    )
    p.add_argument(
        "--model", metavar="DIR", type=Path, default=Path("models/base/model"), help="the model folder to start from"
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        type=str,
        default=None,
        help="writes model/ and train_log.csv here (default: $OUTPUT_DIR, else models/prep_sft or models/full_sft)",
    )
    p.add_argument(
        "--train-file", metavar="FILE", type=Path, default=Path("data/gsm8k/train.jsonl"), help="problems and solutions"
    )
    p.add_argument(
        "--traces-file", metavar="FILE", type=Path, default=None, help="train on these traces instead of the solutions"
    )
    p.add_argument(
        "--samples",
        metavar="N",
        type=int,
        default=None,
        help="examples to train on (default: $PREP_TRAIN_SAMPLES / $TRAIN_SAMPLES, else params)",
    )
    add_learning_rate(p)  # --stage full only: prep_sft has its own learning_rate
    alias(p, "--base-model", "--model")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .. import PipelineError
    from ..guards import exclusive
    from ..train_sft import SFTStageConfig, main

    stage = "prep_sft" if args.stage == "prep" else "sft_from_traces" if args.traces_file else "full_sft"
    samples_key = "prep_sft.samples" if args.stage == "prep" else "run.samples"
    if args.stage == "prep" and (args.learning_rate, args.learning_rate_from, args.candidates) != (None, None, None):
        raise PipelineError(
            "--learning-rate, --learning-rate-from and --candidates are for --stage full (prep_sft.learning_rate)"
        )
    cli = {samples_key: args.samples, "run.output_dir": args.output_dir, "seed": args.seed}
    rate = None if args.stage == "prep" else learning_rate(args, "full_sft")
    params = params_for(args, stage, cli | {"run.learning_rate": rate})
    folder = output_dir(params, "models/prep_sft" if args.stage == "prep" else "models/full_sft")
    with exclusive(folder):  # before anything reads or clears its checkpoints
        set_threads(params, params["prep_sft"].get("threads") if args.stage == "prep" else None)
        main(
            params,
            SFTStageConfig(
                stage=args.stage,
                output_dir=folder,
                base_model=args.model,
                train_file=args.train_file,
                traces_file=args.traces_file,
                candidates=args.candidates,
            ),
        )
    return 0
