"""Test-time boosters in the eval stage (params: eval.boosters), each scored on the same problems as greedy:

- `calculator`: greedy decoding in calculator mode (calculator.py);
- `maj@k`: k sampled completions per problem, majority vote over their extracted answers;
- `pass@1`, `pass@k`: from n >= k sampled completions per problem, c of them correct, the unbiased
  estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), averaged over problems.

One sampled pass (n completions per problem, at `temperature`, with the calculator when
`sampled_calculator`) feeds maj@k, pass@1 and pass@k. The primary `accuracy` of the eval stays the plain
greedy one. Each protocol records its accuracy, a 95 % interval, and the seconds of the generation pass it
took (the sampled protocols share theirs); per problem, debug.csv gets a `correct:<protocol>` column.
"""

from __future__ import annotations

import math
import time
from collections import Counter


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021, eq. 1), in exact integers."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority(answers: list[str | None]) -> str | None:
    """The most frequent extracted answer, ignoring completions without one (None); a tie goes to the
    answer that appeared first, so the vote is deterministic."""
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None  # most_common keeps first-seen order on ties


def protocols(boosters: dict) -> list[str]:
    """The booster names `boosters` (params eval.boosters) asks for, in the order they are reported."""
    names = ["calculator"] if boosters["calculator"] else []
    if boosters["samples_per_problem"]:
        k = boosters["k"]
        names += [f"maj@{k}", "pass@1"] + ([f"pass@{k}"] if k > 1 else [])
    return names


def _summary(scores: list[float], seconds: float) -> dict:
    """Accuracy and 95 % interval of per-problem scores: Wilson for 0/1 scores (as the greedy accuracy),
    a bootstrap over problems for fractional ones (pass@1, and pass@k with n > k)."""
    from .stats import bootstrap_accuracy, wilson_interval

    n = len(scores)
    if all(s in (0, 1) for s in scores):
        k = int(sum(scores))
        return {
            "accuracy": k / n if n else 0.0,
            "correct": k,
            "n": n,
            "accuracy_ci95": list(wilson_interval(k, n)),
            "interval": "wilson",
            "seconds": round(seconds, 3),
        }
    boot = bootstrap_accuracy([scores])
    return {
        "accuracy": boot["mean"],
        "correct": None,
        "n": n,
        "accuracy_ci95": [round(x, 6) for x in boot["ci95"]],
        "interval": "bootstrap",
        "seconds": round(seconds, 3),
    }


def run(
    model, tokenizer, prompts: list[str], golds: list[str], ev: dict, desc: str, record: list | None = None
) -> tuple[dict, dict]:
    """(metrics["boosters"], per-problem columns for debug.csv) for the boosters params eval.boosters asks for.
    `record`: gets each generation pass's timing (generation.generate)."""
    from .calculator import Calculator
    from .generation import decoding, generate
    from .grader import answers_match, extract_answer, grade

    b = ev["boosters"]  # k <= samples_per_problem: params.py checks it with the other clashes
    common = {"batch_size": ev["batch_size"], "max_new_tokens": ev["max_new_tokens"], "record": record}
    metrics, columns = {}, {}
    if b["calculator"]:
        calc = Calculator(tokenizer)
        started = time.perf_counter()
        out = generate(model, tokenizer, prompts, **common, processor=calc, desc=f"{desc} calculator")
        seconds = time.perf_counter() - started
        graded = [grade(c[0], g) for c, g in zip(out, golds, strict=True)]
        columns["extracted:calculator"] = [e for e, _ in graded]
        columns["correct:calculator"] = [float(ok) for _, ok in graded]
        metrics["calculator"] = {
            **_summary(columns["correct:calculator"], seconds),
            "calculator_calls": calc.calls,
            "generation": {**decoding(False, 1.0), "calculator": True},
        }
    n, k = b["samples_per_problem"], b["k"]
    if n:
        calc = Calculator(tokenizer) if b["sampled_calculator"] else None
        started = time.perf_counter()
        out = generate(
            model,
            tokenizer,
            prompts,
            **common,
            do_sample=True,
            temperature=b["temperature"],
            num_return_sequences=n,
            processor=calc,
            desc=f"{desc} {n} samples",
        )
        seconds = time.perf_counter() - started
        answers = [[extract_answer(c) for c in cs] for cs in out]
        right = [[ok for _, ok in (grade(c, g) for c in cs)] for cs, g in zip(out, golds, strict=True)]
        columns[f"correct:maj@{k}"] = [float(answers_match(majority(a[:k]), g)) for a, g in zip(answers, golds)]
        columns["correct:pass@1"] = [pass_at_k(n, sum(r), 1) for r in right]
        if k > 1:
            columns[f"correct:pass@{k}"] = [pass_at_k(n, sum(r), k) for r in right]
        columns["answers:sampled"] = ["|".join("" if a is None else a for a in ans) for ans in answers]
        sampled = {
            "generation": {
                **decoding(True, b["temperature"]),
                "calculator": b["sampled_calculator"],
                "samples_per_problem": n,
            },
            "calculator_calls": calc.calls if calc else None,
        }
        for name in protocols(b)[1 if b["calculator"] else 0 :]:
            metrics[name] = {**_summary(columns[f"correct:{name}"], seconds), **sampled}
    return metrics, columns
