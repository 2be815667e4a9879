"""`select_<method>` stages → metrics/select/<method>_<budget>.json: the learning rate a method trains every
seed with at one budget, chosen on the validation split (issue 22).

Each rate of the method's grid (params `full_sft.learning_rates`, `grpo.learning_rates`; sft_from_traces
uses full_sft's) was trained once, at the first seed (`tune_<method>`), and scored greedy on
data/gsm8k/validation.jsonl (`tune_eval_<method>`: metrics/tune/<method>_<budget>/). The choice is the rate
of the highest validation accuracy; a tie goes to the smaller rate (the gentler update, and a rule that
doesn't depend on the order of the grid). `at_edge`: the choice is the grid's smallest or largest value of
several — the best rate may lie beyond the grid, which the Answer then says.

Only validation scores are read here: the test split is scored once, on the final runs (eval_budget).
Standard library only: a cheap stage, with nothing heavy to import.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import STAGES, PipelineError, section_of
from .fileio import atomic_write_json


def choose(candidates: list[dict]) -> dict:
    """The selection from candidates [{"learning_rate", "accuracy", ...}]: every candidate (by rate), the
    chosen rate (highest accuracy, the smaller rate on a tie) and whether it sits at the grid's edge."""
    if not candidates:
        raise PipelineError("no learning-rate candidates to choose from")
    ordered = sorted(candidates, key=lambda c: c["learning_rate"])
    best = min(ordered, key=lambda c: (-c["accuracy"], c["learning_rate"]))
    rates = [c["learning_rate"] for c in ordered]
    return {
        "candidates": ordered,
        "chosen": best["learning_rate"],
        "at_edge": len(rates) > 1 and best["learning_rate"] in (rates[0], rates[-1]),
    }


def candidate_metrics(method: str, budget: int, rate: float, root: Path = Path(".")) -> Path:
    """The validation metrics of one candidate (tune_eval_<method>'s output; the rate as Python writes it,
    as both engines name the file)."""
    return root / STAGES[f"tune_eval_{method}"].outputs["metrics"].format(budget=budget, lr=rate)


def selection_file(method: str, budget: int, root: Path = Path(".")) -> Path:
    return root / STAGES[f"select_{method}"].outputs["selection"].format(budget=budget)


def select(params: dict, method: str, budget: int, root: Path = Path(".")) -> dict:
    """The selection of `method` at `budget` from its candidates' validation metrics."""
    section = section_of(method)
    candidates = []
    for rate in params[section]["learning_rates"]:
        path = candidate_metrics(method, budget, rate, root)
        try:
            m = json.loads(path.read_text())
        except FileNotFoundError:
            raise PipelineError(
                f"{path}: no validation score for {method}'s candidate at learning rate {rate} (run tune_eval_{method})"
            ) from None
        candidates.append({"learning_rate": rate, "accuracy": m["accuracy"], "correct": m["correct"], "n": m["n"]})
    return {
        "method": method,
        "budget": budget,
        "grid": f"{section}.learning_rates",
        "split": "validation",
        **choose(candidates),
    }


def main(params: dict, method: str, budget: int, output: Path | None = None) -> dict:
    result = select(params, method, budget)
    atomic_write_json(output or selection_file(method, budget), result)
    return result
