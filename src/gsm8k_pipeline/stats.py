"""Interval estimates shared by the eval stage (which writes them) and the results records (which check them)."""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=32)
def _weights(seed: int, draws: int, sizes: tuple[int, ...]) -> tuple:
    """Bootstrap resampling weights from a generator seeded with `seed`: for each of `sizes` in turn, `draws`
    rows of how often each of its items was drawn. Cached (read-only): a leaderboard asks for the same few
    shapes over a hundred times, and numpy's multinomial took 5.7 of its 9.6 s (issue 25)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = tuple(rng.multinomial(size, np.full(size, 1 / size), size=draws) for size in sizes)
    for w in weights:
        w.flags.writeable = False
    return weights


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
    means = _resampled_means(correct, *_weights(seed, draws, correct.shape))
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
    problem_w, first_w, second_w = _weights(seed, draws, (first.shape[1], first.shape[0], second.shape[0]))
    diffs = _resampled_means(first, first_w, problem_w) - _resampled_means(second, second_w, problem_w)
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
    diff = first - second
    diffs = _resampled_means(diff, *_weights(seed, draws, diff.shape))
    tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
    return {
        "difference": float(diff.mean()),
        "ci95": _percentiles(diffs),
        "p_value": float(min(1.0, 2 * (tail + 1) / (draws + 1))),
    }
