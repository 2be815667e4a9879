"""The results record: one evaluated model as `metrics/all.json` holds it and `gsm8k publish` shares it.

`record()` builds one from an eval's metrics (the leaderboard stage); `validate_record()` checks one from
anyone (the workspace reads other agents' files with it, and `gsm8k publish` checks its own before
sharing). One module, so the two sides cannot drift apart.
"""

from __future__ import annotations

import math

from . import RunId

MAX_N = 10**6  # problems in one eval: GSM8K's test split has 1,319; a larger n is implausible


def record(metrics: dict, params: dict, commit: str | None) -> dict:
    """The record of one model from its eval metrics (metrics/eval/<id>.json)."""
    from .params import digest

    model_id = metrics["model_id"]
    run = RunId.parse(model_id)  # None for base and prep_sft: no budget, no seed
    return {
        "id": model_id,
        "method": run.method if run else model_id,
        "budget": run.budget if run else None,
        "seed": run.seed if run else None,
        "base_model": params["base_model"]["name"],
        "accuracy": metrics["accuracy"],
        "accuracy_ci95": metrics["accuracy_ci95"],
        "thinking_proportion": metrics["thinking_proportion"],
        "answer_proportion": metrics["answer_proportion"],
        "n": metrics["n"],
        # How many of its problems repeat a train question (contamination.for_eval); None: not known.
        "contamination": metrics.get("contamination"),
        "eval": metrics["generation"],
        # Test-time boosters' accuracies (calculator, maj@k, pass@k) next to the greedy `accuracy`.
        "boosters": {name: m["accuracy"] for name, m in metrics.get("boosters", {}).items()},
        "params_digest": digest(params),
        "git_commit": commit,
    }


class Invalid(ValueError):
    """A record (or results file) that is not exactly the expected shape; the message says which field."""


def number(value, what: str, lo: float = 0.0, hi: float = 1.0, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{what} is not a number")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise Invalid(f"{what} is outside [{lo:g}, {hi:g}]")
    return float(value)


def integer(value, what: str, lo: int, hi: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise Invalid(f"{what} is not an integer in [{lo}, {hi}]")
    return value


def text(value, what: str, limit: int = 200, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Invalid(f"{what} is not a string of 1-{limit} characters")
    return value


def check_consistent(accuracy: float, ci95: list[float], n: int) -> None:
    """Raise Invalid unless the numbers could come from one evaluation, as evaluate writes them: accuracy
    is k/n for a whole k, and the interval is the 95 % Wilson interval of k/n (to its 6 decimals). Without
    this, accuracy 0.7 with n = 1, or [1, 1] with a made-up n, would rank."""
    from .stats import wilson_interval

    k = round(accuracy * n)
    if abs(k / n - accuracy) > 1e-9:
        raise Invalid(f"accuracy {accuracy:g} is not a whole number of correct answers out of n = {n}")
    expected = wilson_interval(k, n)
    if any(abs(x - y) > 1e-6 for x, y in zip(ci95, expected)):
        raise Invalid(f"accuracy_ci95 is not the 95 % Wilson interval of {k}/{n}, [{expected[0]:g}, {expected[1]:g}]")


def validate_record(r) -> dict:
    """A record from anyone, checked field by field and reduced to the fields the leaderboard shows."""
    if not isinstance(r, dict):
        raise Invalid("a record is not an object")
    acc = number(r.get("accuracy"), "accuracy")
    ci = r.get("accuracy_ci95")
    if not isinstance(ci, list) or len(ci) != 2:
        raise Invalid("accuracy_ci95 is not [lo, hi]")
    lo, hi = (number(x, "accuracy_ci95") for x in ci)
    if not lo - 1e-9 <= acc <= hi + 1e-9:
        raise Invalid("accuracy is outside its accuracy_ci95")
    n = integer(r.get("n"), "n", 1, MAX_N)
    check_consistent(acc, [lo, hi], n)
    return {
        "id": text(r.get("id"), "id", optional=False),
        "method": text(r.get("method"), "method"),
        "budget": integer(r.get("budget"), "budget", 0, 10**12, optional=True),
        "seed": integer(r.get("seed"), "seed", 0, 2**63, optional=True),
        "base_model": text(r.get("base_model"), "base_model", 300),
        "accuracy": acc,
        "accuracy_ci95": [lo, hi],
        "thinking_proportion": number(r.get("thinking_proportion"), "thinking_proportion", optional=True),
        "answer_proportion": number(r.get("answer_proportion"), "answer_proportion", optional=True),
        "n": n,
        "params_digest": text(r.get("params_digest"), "params_digest", 128),
        "git_commit": text(r.get("git_commit"), "git_commit", 128),
    }
