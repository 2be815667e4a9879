"""`gsm8k download`: the download stage, data/gsm8k/{train,test}.jsonl and stats.json."""

from __future__ import annotations

from pathlib import Path

from . import add_stage, alias, params_for


def add_cli(sub) -> None:
    p = add_stage(sub, "download", "data/gsm8k/{train,test}.jsonl + stats.json")
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        type=Path,
        default=Path("data/gsm8k"),
        help="writes train.jsonl, test.jsonl, stats.json here",
    )
    alias(p, "--out-dir", "--output-dir")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import json

    from ..download import DownloadConfig, main
    from ..guards import exclusive

    params = params_for(args, "download")
    with exclusive(args.output_dir):  # one run per output: a second engine's run refuses at once
        stats = main(params, DownloadConfig(out_dir=args.output_dir))
    print(json.dumps({s: stats[s]["rows"] for s in ("train", "test")}))
    return 0
