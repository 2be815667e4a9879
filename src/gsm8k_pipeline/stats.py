"""Interval estimates shared by the eval stage (which writes them) and the results records (which check them)."""

from __future__ import annotations

import math


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval for a binomial proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6))


# --- over seeds and problems ---------------------------------------------------------------------
#
# One training run per cell can't answer "is A better than B": on the tiny default the thread count alone
# moved accuracies by 8 points. So each (method, budget) is trained with several seeds and evaluated on
# the same problems, and its uncertainty has two sources: which seeds were drawn (run-to-run variance)
# and which problems (test-set sampling). The two-level bootstrap resamples both — seeds with
# replacement, then problems with replacement — and reads the 95 % interval off the percentiles.
# Differences between two methods share the resampled problems (paired by problem: both answered the
# same questions) and resample each method's seeds independently (their runs are independent).


def _weights(rng, size: int, draws: int):
    """Bootstrap resampling weights: `draws` rows of how often each of `size` items was drawn."""
    import numpy as np

    return rng.multinomial(size, np.full(size, 1 / size), size=draws)


def _resampled_means(correct, seed_w, problem_w):
    """Accuracy under each resample: correct is seeds x problems (0/1)."""
    import numpy as np

    seeds, problems = correct.shape
    return np.einsum("rs,sn,rn->r", seed_w, correct, problem_w) / (seeds * problems)


def _percentiles(values) -> list[float]:
    import numpy as np

    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def bootstrap_accuracy(correct, draws: int = 10_000, seed: int = 0) -> dict:
    """Mean accuracy over seeds and its 95 % two-level bootstrap interval; `correct` is seeds x problems."""
    import numpy as np

    correct = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    seeds, problems = correct.shape
    means = _resampled_means(correct, _weights(rng, seeds, draws), _weights(rng, problems, draws))
    return {
        "mean": float(correct.mean()),
        "ci95": _percentiles(means),
        "per_seed": [float(v) for v in correct.mean(axis=1)],
    }


def bootstrap_difference(first, second, draws: int = 10_000, seed: int = 0) -> dict:
    """Mean accuracy of `first` minus `second` (each seeds x problems, the same problems in the same
    order), its 95 % two-level bootstrap interval, and a two-sided bootstrap p-value for "no difference"."""
    import numpy as np

    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if first.shape[1] != second.shape[1]:
        raise ValueError(f"paired by problem, but {first.shape[1]} vs {second.shape[1]} problems")
    rng = np.random.default_rng(seed)
    problem_w = _weights(rng, first.shape[1], draws)
    diffs = _resampled_means(first, _weights(rng, first.shape[0], draws), problem_w) - _resampled_means(
        second, _weights(rng, second.shape[0], draws), problem_w
    )
    tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
    return {
        "difference": float(first.mean() - second.mean()),
        "ci95": _percentiles(diffs),
        "p_value": float(min(1.0, 2 * (tail + 1) / (draws + 1))),
    }


def bootstrap_same_runs(first, second, draws: int = 10_000, seed: int = 0) -> dict:
    """`first` minus `second` scored on the same runs and problems (seeds x problems each, e.g. one model
    with and without a test-time booster): every resample draws one set of seeds and one set of problems
    for both, so run and problem effects cancel. Mean difference, 95 % interval, two-sided p-value."""
    import numpy as np

    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if first.shape != second.shape:
        raise ValueError(f"paired by run and problem, but shapes {first.shape} vs {second.shape}")
    rng = np.random.default_rng(seed)
    diff = first - second
    diffs = _resampled_means(diff, _weights(rng, diff.shape[0], draws), _weights(rng, diff.shape[1], draws))
    tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
    return {
        "difference": float(diff.mean()),
        "ci95": _percentiles(diffs),
        "p_value": float(min(1.0, 2 * (tail + 1) / (draws + 1))),
    }
