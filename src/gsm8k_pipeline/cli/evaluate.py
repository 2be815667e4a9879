"""`gsm8k evaluate`: the eval stages (eval: base, prep_sft; eval_budget: every budgeted run; tune_eval_<method>: a
learning-rate candidate, on the validation split)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import RunId, candidate_method
from . import add_stage, alias, params_for, set_threads, split_output


def add_cli(sub) -> None:
    p = add_stage(sub, "evaluate", "evaluate a model on the test split", replicated=True)
    p.add_argument(
        "--model", metavar="DIR", type=Path, default=Path("models/base/model"), help="the model folder to evaluate"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="the metrics file; its stem is the model id, and FILE's folder gets STEM/ with the details "
        "(default: $OUTPUT_DIR/base.json, else metrics/eval/base.json)",
    )
    p.add_argument(
        "--test-file", metavar="FILE", type=Path, default=Path("data/gsm8k/test.jsonl"), help="the problems to answer"
    )
    p.add_argument(
        "--train-file",
        metavar="FILE",
        type=Path,
        default=Path("data/gsm8k/train.jsonl"),
        help="lm-eval's few-shot examples (params lm_eval)",
    )
    p.add_argument(
        "--samples",
        metavar="N",
        type=int,
        default=None,
        help="cap on test problems (default: $EVAL_SAMPLES, else eval.samples)",
    )
    # What --output replaced: a folder and a file name in it.
    p.add_argument("--output-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--output-file", default=None, help=argparse.SUPPRESS)
    alias(p, "--model-path", "--model")
    p.set_defaults(func=_run)


def stage_of(model_id: str) -> str:
    """The stage whose job scores `model_id`: a learning-rate candidate's (<method>_<budget>_lr<rate>)
    tune_eval_<method>, a budgeted run's eval_budget, any other's eval."""
    if method := candidate_method(model_id):
        return f"tune_eval_{method}"
    return "eval_budget" if RunId.parse(model_id) else "eval"


def _run(args) -> int:
    from ..evaluate import EvalConfig, main
    from ..guards import exclusive

    folder, name = split_output(args, None, "base.json")
    stage = stage_of(Path(name).stem)
    params = params_for(args, stage, {"eval.samples": args.samples, "run.output_dir": folder, "seed": args.seed})
    config = EvalConfig(
        model_path=args.model,
        output_dir=Path(params["run"]["output_dir"] or "metrics/eval"),
        output_file=name,
        test_file=args.test_file,
        train_file=args.train_file,
        validation=stage.startswith("tune_eval_"),
    )
    with exclusive(config.output_dir / config.output_file):
        set_threads(params)
        m = main(params, config)
    lo, hi = m["accuracy_ci95"]
    print(
        f"{m['model_id']}: accuracy {m['accuracy']:.4f} ({m['correct']}/{m['n']}, 95% CI {lo:.4f}-{hi:.4f}), "
        f"answer_proportion {m['answer_proportion']:.4f}, {m['problems_per_second']} problems/s"
    )
    return 0
