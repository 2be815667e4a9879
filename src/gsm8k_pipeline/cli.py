"""`gsm8k` — one command per pipeline stage; the Snakefile and dvc.yaml call these same commands.

Knob precedence: command line > environment (EVAL_SAMPLES, OUTPUT_DIR, ...) > params.yaml, resolved and
validated by params.resolve before any stage code runs. Heavy libraries are imported inside the handlers,
so `gsm8k --help` and param errors are instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _params(args, stage: str, cli: dict | None = None) -> dict:
    """The params `stage` reads — params.yaml < environment < command line, validated (params.resolve) —
    restricted to the sections dag.STAGES declares for it, plus `run`. A stage that read an undeclared
    section would fail here rather than rerun too little."""
    from . import dag, params

    resolved = params.resolve(args.params, cli)
    return dag.stage_params(stage, resolved) | {"run": resolved["run"]}


def _set_threads(params: dict) -> None:
    """torch's CPU threads, from params.yaml: the thread count changes float sums, and Snakemake sets
    OMP_NUM_THREADS to the job's threads while DVC leaves torch's default, so without this the two engines
    train different weights."""
    import torch

    torch.set_num_threads(params["threads"])


def _torch_params(args, stage: str, cli: dict | None = None) -> dict:
    """Params for a stage that computes with torch, its threads set (_set_threads)."""
    params = _params(args, stage, cli)
    _set_threads(params)
    return params


def _output_dir(params: dict, default: str) -> Path:
    """--output-dir, else $OUTPUT_DIR (both resolved into run.output_dir), else the stage's default."""
    return Path(params["run"]["output_dir"] or default)


# What the check_params stage writes when the params validate. Constant, so that a params edit reruns no
# stage through it: every stage depends on it only to run after the check (dvc.yaml, workflow/rules).
CHECKED = "params validated by `gsm8k check-params`; every stage runs after this check\n"


def _cmd_check_params(args) -> int:
    from . import params
    from .fileio import atomic_write_text

    params.resolve(args.params)
    if args.output is not None and not (args.output.exists() and args.output.read_text() == CHECKED):
        atomic_write_text(args.output, CHECKED)
    print(f"{args.params}: ok")
    return 0


def _cmd_download(args) -> int:
    import json

    from .download import DownloadConfig, main

    stats = main(_params(args, "download"), DownloadConfig(out_dir=args.out_dir))
    print(json.dumps({s: stats[s]["rows"] for s in ("train", "test")}))
    return 0


def _cmd_base_model(args) -> int:
    from .base_model import BaseModelConfig, main

    print(main(_torch_params(args, "base_model"), BaseModelConfig(train_file=args.train_file, out_dir=args.out_dir,
                                                                  params_file=args.params)))
    return 0


def _cmd_evaluate(args) -> int:
    from .evaluate import EvalConfig, main
    from .guards import exclusive

    params = _params(args, "eval", {"eval.samples": args.samples, "run.output_dir": args.output_dir,
                                    "seed": args.seed})
    config = EvalConfig(
        model_path=args.model_path,
        output_dir=_output_dir(params, "metrics/eval"),
        output_file=args.output_file,
        test_file=args.test_file,
        train_file=args.train_file,
    )
    with exclusive(config.output_dir / config.output_file):
        _set_threads(params)
        m = main(params, config)
    lo, hi = m["accuracy_ci95"]
    print(f"{m['model_id']}: accuracy {m['accuracy']:.4f} ({m['correct']}/{m['n']}, 95% CI {lo:.4f}-{hi:.4f}), "
          f"answer_proportion {m['answer_proportion']:.4f}, {m['problems_per_second']} problems/s")
    return 0


def _cmd_train_sft(args) -> int:
    from .guards import exclusive
    from .train_sft import SFTStageConfig, main

    stage = "prep_sft" if args.stage == "prep" else "full_sft"
    samples_key = "prep_sft.samples" if args.stage == "prep" else "run.samples"
    params = _params(args, stage, {samples_key: args.samples, "run.output_dir": args.output_dir, "seed": args.seed})
    output_dir = _output_dir(params, f"models/{stage}")
    with exclusive(output_dir):  # before anything reads or clears its checkpoints
        _set_threads(params)
        main(params, SFTStageConfig(
            stage=args.stage, output_dir=output_dir,
            base_model=args.base_model, train_file=args.train_file, traces_file=args.traces_file,
        ))
    return 0


def _cmd_train_grpo(args) -> int:
    from .guards import exclusive
    from .train_grpo import GRPOStageConfig, main

    params = _params(args, "grpo", {"run.samples": args.samples, "run.output_dir": args.output_dir,
                                    "seed": args.seed})
    output_dir = _output_dir(params, "models/grpo")
    with exclusive(output_dir):  # before anything reads or clears its checkpoints
        _set_threads(params)
        main(params, GRPOStageConfig(output_dir=output_dir, base_model=args.base_model, train_file=args.train_file))
    return 0


def _cmd_generate_traces(args) -> int:
    import json

    from .guards import exclusive
    from .traces import TracesConfig, main

    params = _params(args, "traces", {
        "run.samples": args.num_samples, "traces.batch_size": args.batch_size,
        "traces.max_attempts": args.max_attempts, "traces.temperature": args.temperature, "seed": args.seed,
    })
    with exclusive(args.output_dir / args.output_file):
        _set_threads(params)
        stats = main(params, TracesConfig(
            grpo_model=args.grpo_model, output_dir=args.output_dir, output_file=args.output_file,
            dataset_split=args.dataset_split,
        ))
    print(json.dumps(stats))
    return 0


def _cmd_leaderboard(args) -> int:
    from .leaderboard import LeaderboardConfig, main

    records = main(_params(args, "leaderboard"), LeaderboardConfig(eval_dir=args.eval_dir, out_dir=args.out_dir))
    best = max(records, key=lambda r: r["accuracy"])
    print(f"{len(records)} models; best {best['id']} at {best['accuracy']:.4f}")
    return 0


# Commands that are not pipeline stages register their own parsers; their modules are imported only when
# one of them is asked for, so no stage's command runs them (dag.code_deps), and editing them reruns nothing.
DELEGATED = {
    "grade": ("gsm8k_pipeline.grader", "grade completions against gold answers"),
    "workspace": ("gsm8k_pipeline.workspace.cli", "create a shared workspace or regenerate its leaderboard"),
    "board": ("gsm8k_pipeline.workspace.cli", "the workspace's message board: post, list, read"),
    "artifacts": ("gsm8k_pipeline.workspace.cli", "share files and folders through the workspace"),
    "publish": ("gsm8k_pipeline.workspace.cli", "publish this run's results to the workspace"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `gsm8k` parser; the full parser of a DELEGATED command only when `command` is one."""
    import importlib

    parser = argparse.ArgumentParser(prog="gsm8k", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # The DAG runs the stages after prep_sft once per entry of `seeds`, passing it here.
    replicate = argparse.ArgumentParser(add_help=False)
    replicate.add_argument("--seed", type=int, default=None, help="training/sampling seed (default: params seed)")

    p = sub.add_parser("check-params", parents=[common], help="stage: validate params.yaml against the schema")
    p.add_argument("--output", type=Path, default=None,
                   help="when valid, write this (constant) file: what the DAG's stages depend on")
    p.set_defaults(func=_cmd_check_params)

    p = sub.add_parser("download", parents=[common], help="stage: data/gsm8k/{train,test}.jsonl + stats.json")
    p.add_argument("--out-dir", type=Path, default=Path("data/gsm8k"))
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("base-model", parents=[common], help="stage: models/base/ (tiny or a hub model)")
    p.add_argument("--train-file", type=Path, default=Path("data/gsm8k/train.jsonl"))
    p.add_argument("--out-dir", type=Path, default=Path("models/base"))
    p.set_defaults(func=_cmd_base_model)

    p = sub.add_parser("evaluate", parents=[common, replicate], help="stage: evaluate a model on the test split")
    p.add_argument("--model-path", type=Path, default=Path("models/base/model"))
    p.add_argument("--output-dir", type=str, default=None, help="default: $OUTPUT_DIR or metrics/eval")
    p.add_argument("--output-file", default="base.json", help="metrics file; its stem is the model id")
    p.add_argument("--test-file", type=Path, default=Path("data/gsm8k/test.jsonl"))
    p.add_argument("--train-file", type=Path, default=Path("data/gsm8k/train.jsonl"),
                   help="lm-eval's few-shot examples (params lm_eval)")
    p.add_argument("--samples", type=int, default=None, help="cap on test problems (default: $EVAL_SAMPLES, else eval.samples)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("train-sft", parents=[common, replicate], help="stage: SFT (prep, full, or on traces) with TRL")
    p.add_argument("--stage", choices=("prep", "full"), required=True)
    p.add_argument("--output-dir", type=str, default=None, help="default: $OUTPUT_DIR or models/<stage>_sft")
    p.add_argument("--base-model", type=Path, default=Path("models/base/model"), help="model dir to start from")
    p.add_argument("--train-file", type=Path, default=Path("data/gsm8k/train.jsonl"))
    p.add_argument("--traces-file", type=Path, default=None, help="train on these traces instead of the solutions")
    p.add_argument("--samples", type=int, default=None,
                   help="examples to train on (default: $PREP_TRAIN_SAMPLES / $TRAIN_SAMPLES, else params)")
    p.set_defaults(func=_cmd_train_sft)

    p = sub.add_parser("train-grpo", parents=[common, replicate], help="stage: GRPO with TRL")
    p.add_argument("--output-dir", type=str, default=None, help="default: $OUTPUT_DIR or models/grpo")
    p.add_argument("--base-model", type=Path, default=Path("models/prep_sft/model"), help="model dir to start from")
    p.add_argument("--train-file", type=Path, default=Path("data/gsm8k/train.jsonl"))
    p.add_argument("--samples", type=int, default=None, help="problems to train on (default: $TRAIN_SAMPLES, else all)")
    p.set_defaults(func=_cmd_train_grpo)

    p = sub.add_parser("generate-traces", parents=[common, replicate], help="stage: reasoning traces from a GRPO model")
    p.add_argument("--grpo-model", type=Path, required=True)
    p.add_argument("--output-dir", type=Path, default=Path("data/traces"))
    p.add_argument("--output-file", default="traces.jsonl")
    p.add_argument("--dataset-split", default="train")
    p.add_argument("--num-samples", type=int, default=None,
                   help="the first N problems of the split (default: $TRAIN_SAMPLES, else all)")
    p.add_argument("--batch-size", type=int, default=None, help="default: traces.batch_size")
    p.add_argument("--max-attempts", type=int, default=None, help="default: traces.max_attempts")
    p.add_argument("--temperature", type=float, default=None, help="default: traces.temperature")
    p.set_defaults(func=_cmd_generate_traces)

    p = sub.add_parser("leaderboard", parents=[common], help="stage: metrics/all.json, LEADERBOARD.md, plots")
    p.add_argument("--eval-dir", type=Path, default=Path("metrics/eval"))
    p.add_argument("--out-dir", type=Path, default=Path("metrics"))
    p.set_defaults(func=_cmd_leaderboard)

    if command in DELEGATED:
        importlib.import_module(DELEGATED[command][0]).add_cli(sub)
    for name, (_, help_text) in DELEGATED.items():
        if name not in sub.choices:  # listed in --help; parsed when asked for
            sub.add_parser(name, help=help_text)
    return parser


def _log_warnings(command: str) -> None:
    """The package's warnings (e.g. contamination) as one line each on stderr, named like its errors. Only
    the package's logger: libraries' own warnings keep their own format."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"gsm8k {command}: warning: %(message)s"))
    package = logging.getLogger(__package__)
    package.handlers[:] = [handler]
    package.setLevel(logging.WARNING)
    package.propagate = False


def main(argv: list[str] | None = None) -> None:
    from .errors import PipelineError
    from .guards import watch_engine

    # First, so that no stage outlives a `dvc` or `snakemake` killed while it runs (guards.py).
    watch_engine()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(next((a for a in argv if not a.startswith("-")), None)).parse_args(argv)
    _log_warnings(args.command)
    try:
        code = args.func(args)
    except PipelineError as exc:
        print(f"gsm8k {args.command}: error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
