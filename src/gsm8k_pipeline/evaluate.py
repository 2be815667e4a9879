"""`eval` stage → metrics/eval/<model_id>.json, metrics/eval/<model_id>/{debug.csv,summary.txt,timings.json}.

The model id is the output file's stem (base, prep_sft, full_sft_512, ...). Every wall-clock figure (the
passes' seconds) goes to timings.json, none to the other three (timings.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import contamination, timings
from .fileio import atomic_write_json, atomic_write_text
from .harness import run as run_harness
from .stats import wilson_interval


@dataclass(frozen=True)
class EvalConfig:
    model_path: Path = Path("models/base/model")
    output_dir: Path = Path("metrics/eval")
    output_file: str = "base.json"
    test_file: Path = Path("data/gsm8k/test.jsonl")
    train_file: Path = Path("data/gsm8k/train.jsonl")  # lm-eval's few-shot examples
    # A learning-rate candidate scored on the validation split (tune_eval_<method>): every problem of the
    # file, greedy only: the test cap (eval.samples), the boosters and lm-eval are the test split's.
    validation: bool = False

    @property
    def model_id(self) -> str:
        return Path(self.output_file).stem


def score(rows: list[dict], completions: list[str]) -> list[dict]:
    """One debug record per problem."""
    from .formatting import has_answer, has_thinking
    from .grader import grade
    from .task import gold

    records = []
    for i, (row, completion) in enumerate(zip(rows, completions, strict=True)):
        extracted, correct = grade(completion, row["answer"])
        records.append(
            {
                "id": i,
                "question": row["question"],
                "gold": gold(row["answer"]),
                "completion": completion,
                "extracted": extracted,
                "correct": correct,
                "has_thinking": has_thinking(completion),
                "has_answer": has_answer(completion),
            }
        )
    return records


def summarize(records: list[dict], model_id: str, settings: dict, seconds: float) -> dict:
    n = len(records)
    k = sum(r["correct"] for r in records)
    low, high = wilson_interval(k, n)
    return {
        "model_id": model_id,
        "n": n,
        "correct": k,
        "accuracy": k / n if n else 0.0,
        "accuracy_ci95": [low, high],
        "thinking_proportion": sum(r["has_thinking"] for r in records) / n if n else 0.0,
        "answer_proportion": sum(r["has_answer"] for r in records) / n if n else 0.0,
        "generation": settings,
        "seconds": round(seconds, 3),
        "problems_per_second": round(n / seconds, 3) if seconds > 0 else None,
    }


def summary_text(metrics: dict, records: list[dict], model_path: Path) -> str:
    lo, hi = metrics["accuracy_ci95"]
    lines = [
        f"GSM8K evaluation — {metrics['model_id']} ({model_path})",
        f"accuracy            {metrics['accuracy']:.4f}  ({metrics['correct']}/{metrics['n']}, 95% CI {lo:.4f}–{hi:.4f})",
        f"thinking_proportion {metrics['thinking_proportion']:.4f}",
        f"answer_proportion   {metrics['answer_proportion']:.4f}",
        f"generation          {metrics['generation']}",
        *booster_lines(metrics),
        "",
    ]
    for r in records[:3]:
        completion = r["completion"] if len(r["completion"]) <= 300 else r["completion"][:300] + "…"
        lines += [
            f"--- problem {r['id']} (gold {r['gold']}, extracted {r['extracted']}, correct {r['correct']})",
            completion,
        ]
    return "\n".join(lines) + "\n"


def pass_timings(passes: list[dict]) -> dict:
    """Wall-clock figures of one eval (timings.json, never the results: they differ run to run): each generation pass
    (generation.pass_timing: its first batch apart from its steady state), and the warm-up the process paid,
    i.e. the first pass's (compiling and capturing the decoding graph on a GPU)."""
    return {"warmup_seconds": passes[0]["warmup_seconds"] if passes else None, "passes": passes}


def add_boosters(
    metrics: dict,
    records: list[dict],
    model,
    tokenizer,
    prompts: list[str],
    ev: dict,
    model_id: str,
    passes: list | None = None,
) -> None:
    """Test-time boosters (boosters.py, params eval.boosters) on the same problems, for the models
    eval.boosters.models selects: metrics gain `boosters` (one entry per protocol), each debug record its
    per-problem `correct:<protocol>` columns. Nothing for the others."""
    from . import boosters, selected

    if not selected(model_id, ev["boosters"]["models"]):
        return
    found, columns = boosters.run(
        model, tokenizer, prompts, [r["gold"] for r in records], ev, f"eval {model_id}", record=passes
    )
    metrics["boosters"] = found
    for name, values in columns.items():
        for record, value in zip(records, values, strict=True):
            record[name] = value


def debug_csv(records: list[dict]) -> str:
    """The per-problem records as CSV, a column per key in the order keys first appear. The standard library's
    writer, not pandas' (whose to_csv writes through the same writer): importing pandas took a quarter of a
    second of every eval process, for this one file. Each column holds one type or None, so pandas would
    write the same bytes (tests/test_evaluate.py compares the two)."""
    import csv
    import io

    columns = list(dict.fromkeys(key for record in records for key in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def booster_lines(metrics: dict) -> list[str]:
    lines = []
    for name, m in metrics.get("boosters", {}).items():
        lo, hi = m["accuracy_ci95"]
        lines.append(f"{name:<19} {m['accuracy']:.4f}  (95% CI {lo:.4f}–{hi:.4f})")
    return lines


def main(params: dict, config: EvalConfig = EvalConfig()) -> dict:
    """Evaluate, write the stage's files, and return the metrics with their timings (as the bench reads them)."""
    import torch

    from .device import device
    from .formatting import prompt_messages
    from .generation import decoding, generate, render_prompts
    from .loading import load_for_inference
    from .task import read_jsonl

    ev = params["eval"]
    rows = read_jsonl(config.test_file)
    rows = rows if config.validation else rows[: ev["samples"]]
    settings = {
        **decoding(ev["do_sample"], ev["temperature"]),
        "max_new_tokens": ev["max_new_tokens"],
        "batch_size": ev["batch_size"],
        "samples": len(rows),
        "device": device(),
        "precision": params["precision"],
    }
    json_path = config.output_dir / config.output_file
    json_path.unlink(missing_ok=True)  # a failed run must not leave an older result looking current

    torch.manual_seed(params["seed"])
    loading = time.perf_counter()
    model, tokenizer = load_for_inference(config.model_path, params["precision"])  # checks precision first
    # How many of these problems repeat a train question; before generating, so a stale stats.json fails fast.
    contaminated = contamination.for_eval(config.test_file, len(rows))
    prompts = render_prompts(tokenizer, [prompt_messages(r["question"], params["prompt"]["system"]) for r in rows])
    passes: list[dict] = []  # each generation pass's timing
    started = time.perf_counter()
    load_seconds = started - loading
    timings.work_begins()
    completions = generate(
        model,
        tokenizer,
        prompts,
        batch_size=ev["batch_size"],
        max_new_tokens=ev["max_new_tokens"],
        do_sample=ev["do_sample"],
        temperature=ev["temperature"],
        desc=f"eval {config.model_id}",
        record=passes,
    )
    seconds = time.perf_counter() - started

    records = score(rows, [c[0] for c in completions])
    metrics = summarize(records, config.model_id, settings, seconds)
    if not config.validation:
        add_boosters(metrics, records, model, tokenizer, prompts, ev, config.model_id, passes=passes)
    metrics["contamination"] = contaminated
    metrics["timings"] = pass_timings(passes)
    if not config.validation:
        harness = run_harness(model, tokenizer, params, config.model_id, config.test_file, config.train_file)
        if harness is not None:  # lm-eval's numbers beside ours, for the models params lm_eval selects
            metrics["lm_eval"] = harness
    results, clock = timings.split(metrics)
    detail_dir = config.output_dir / config.model_id
    atomic_write_text(detail_dir / "debug.csv", debug_csv(records))
    atomic_write_text(detail_dir / "summary.txt", summary_text(results, records, config.model_path))
    timings.write(detail_dir / timings.TIMINGS, {**clock, "load_seconds": round(load_seconds, 3)})
    atomic_write_json(json_path, results)  # last: its presence means the evaluation finished
    return metrics
