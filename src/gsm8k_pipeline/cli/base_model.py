"""`gsm8k base-model`: the base_model stage, models/base/ (tiny, a local folder, a hub or a pypi: model)."""

from __future__ import annotations

from pathlib import Path

from . import add_stage, params_for, set_threads


def add_cli(sub) -> None:
    p = add_stage(sub, "base-model", "models/base/ (tiny or a hub model)")
    p.add_argument("--train-file", type=Path, default=Path("data/gsm8k/train.jsonl"))
    p.add_argument("--out-dir", type=Path, default=Path("models/base"))
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..base_model import BaseModelConfig, main
    from ..guards import exclusive

    params = params_for(args, "base_model")
    with exclusive(args.out_dir):  # one run per output: a second engine's run refuses at once
        set_threads(params)
        config = BaseModelConfig(train_file=args.train_file, out_dir=args.out_dir, params_file=args.params)
        print(main(params, config))
    return 0
