"""`gsm8k base-model`: the base_model stage, models/base/ (tiny, a local folder, a hub or a pypi: model)."""

from __future__ import annotations

from pathlib import Path

from . import add_stage, alias, params_for, set_threads


def add_cli(sub) -> None:
    p = add_stage(sub, "base-model", "models/base/ (tiny or a hub model)")
    p.add_argument(
        "--train-file",
        metavar="FILE",
        type=Path,
        default=Path("data/gsm8k/train.jsonl"),
        help="the tiny tokenizer's training text",
    )
    p.add_argument(
        "--output-dir", metavar="DIR", type=Path, default=Path("models/base"), help="writes model/ and info.json here"
    )
    alias(p, "--out-dir", "--output-dir")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..base_model import BaseModelConfig, main
    from ..guards import exclusive

    params = params_for(args, "base_model")
    with exclusive(args.output_dir):  # one run per output: a second engine's run refuses at once
        set_threads(params)
        config = BaseModelConfig(train_file=args.train_file, out_dir=args.output_dir, params_file=args.params)
        print(main(params, config))
    return 0
