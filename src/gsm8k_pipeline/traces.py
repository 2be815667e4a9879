"""`traces` stage: reasoning traces from a GRPO model, to SFT on.

For each of the first N problems, sample up to K completions; keep the first that is correct and in the
exact output format, else fall back to the original GSM8K solution in that format. All K attempts of all
problems are sampled in one batched pass (num_return_sequences=K), then scanned in order; with
`traces.calculator`, in calculator mode (calculator.py), so traces with and without it can be compared.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from .fileio import atomic_write_json, atomic_write_jsonl


@dataclass(frozen=True)
class TracesConfig:
    grpo_model: Path
    output_dir: Path = Path("data/traces")
    output_file: str = "traces.jsonl"


def first_success(completions: list[str], gold: str) -> int | None:
    """Index of the first completion that is correct and exactly formatted."""
    from .rewards import correctness, format_exact

    return next((k for k, c in enumerate(completions) if format_exact(c) and correctness(c, gold)), None)


def main(params: dict, config: TracesConfig) -> dict:
    import torch

    from .calculator import Calculator
    from .device import device
    from .formatting import prompt_messages, to_target
    from .generation import decoding, generate, render_prompts
    from .loading import load_for_inference
    from .task import gold, read_jsonl

    knobs = params["traces"]
    out_path = config.output_dir / config.output_file
    stats_path = out_path.with_name(out_path.name + ".stats.json")
    for stale in (out_path, stats_path):  # a failed run must not leave an older result looking current
        stale.unlink(missing_ok=True)

    rows = read_jsonl(Path("data/gsm8k/train.jsonl"))[: params["run"]["samples"]]
    torch.manual_seed(params["seed"])
    model, tokenizer = load_for_inference(config.grpo_model, params["precision"])
    prompts = render_prompts(tokenizer, [prompt_messages(r["question"], params["prompt"]["system"]) for r in rows])
    calc = Calculator(tokenizer) if knobs["calculator"] else None
    samples = generate(
        model,
        tokenizer,
        prompts,
        batch_size=knobs["batch_size"],
        max_new_tokens=knobs["max_new_tokens"],
        do_sample=True,
        temperature=knobs["temperature"],
        num_return_sequences=knobs["max_attempts"],
        processor=calc,
        desc="traces",
    )
    traces, attempts = [], []
    for row, completions in zip(rows, samples, strict=True):
        k = first_success(completions, gold(row["answer"]))
        if k is None:
            traces.append({**row, "completion": to_target(row["answer"]), "source": "fallback", "attempts": None})
        else:
            traces.append({**row, "completion": completions[k], "source": "grpo", "attempts": k + 1})
            attempts.append(k + 1)
    n, successes = len(traces), len(attempts)
    stats = {
        "total_samples": n,
        "grpo_successes": successes,
        "fallback_count": n - successes,
        "success_rate": successes / n if n else 0.0,
        "avg_attempts_for_successes": statistics.fmean(attempts) if attempts else None,
        # A fallback used every attempt.
        "avg_attempts_overall": (sum(attempts) + (n - successes) * knobs["max_attempts"]) / n if n else None,
        "max_attempts": knobs["max_attempts"],
        "temperature": knobs["temperature"],
        # Calculator mode (params traces.calculator): results after `<<expr=` written by the calculator.
        "calculator": knobs["calculator"],
        "calculator_calls": calc.calls if calc else None,
        "generation": {
            **decoding(True, knobs["temperature"]),
            "max_new_tokens": knobs["max_new_tokens"],
            "calculator": knobs["calculator"],
            "device": device(),
            "precision": params["precision"],
        },
        "grpo_model": str(config.grpo_model),
    }
    atomic_write_jsonl(out_path, traces)
    atomic_write_json(stats_path, stats)  # last: its presence means the traces are complete
    return stats
