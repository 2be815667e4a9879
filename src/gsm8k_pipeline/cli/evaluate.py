"""`gsm8k evaluate`: the eval stages (eval: base, prep_sft; eval_budget: every budgeted run)."""

from __future__ import annotations

from pathlib import Path

from .. import RunId
from . import add_stage, output_dir, params_for, set_threads


def add_cli(sub) -> None:
    p = add_stage(sub, "evaluate", "evaluate a model on the test split", replicated=True)
    p.add_argument("--model-path", type=Path, default=Path("models/base/model"))
    p.add_argument("--output-dir", type=str, default=None, help="default: $OUTPUT_DIR or metrics/eval")
    p.add_argument("--output-file", default="base.json", help="metrics file; its stem is the model id")
    p.add_argument("--test-file", type=Path, default=Path("data/gsm8k/test.jsonl"))
    p.add_argument(
        "--train-file",
        type=Path,
        default=Path("data/gsm8k/train.jsonl"),
        help="lm-eval's few-shot examples (params lm_eval)",
    )
    p.add_argument(
        "--samples", type=int, default=None, help="cap on test problems (default: $EVAL_SAMPLES, else eval.samples)"
    )
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..evaluate import EvalConfig, main
    from ..guards import exclusive

    # A budgeted run's model id names eval_budget's job, any other id eval's.
    stage = "eval_budget" if RunId.parse(Path(args.output_file).stem) else "eval"
    params = params_for(
        args, stage, {"eval.samples": args.samples, "run.output_dir": args.output_dir, "seed": args.seed}
    )
    config = EvalConfig(
        model_path=args.model_path,
        output_dir=output_dir(params, "metrics/eval"),
        output_file=args.output_file,
        test_file=args.test_file,
        train_file=args.train_file,
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
