"""The two-level bootstrap against cases whose answers are known in closed form."""

import numpy as np
import pytest

from gsm8k_pipeline.stats import bootstrap_accuracy, bootstrap_difference


def test_one_seed_matches_the_normal_interval_of_a_proportion():
    n, k = 400, 120
    correct = np.zeros((1, n))
    correct[0, :k] = 1
    out = bootstrap_accuracy(correct, draws=20_000)
    p = k / n
    half = 1.959964 * np.sqrt(p * (1 - p) / n)
    assert out["mean"] == p
    assert out["ci95"] == pytest.approx([p - half, p + half], abs=0.006)


def test_seed_variance_alone_gives_the_exact_bootstrap_distribution():
    """Rows all right or all wrong: only the seed draw matters. The mean of 3 draws from {1, 0, 1} is 0 with
    probability 1/27 (> 2.5 %) and 1 with probability 8/27, so the 95 % interval is exactly [0, 1]."""
    correct = np.array([[1] * 50, [0] * 50, [1] * 50])
    out = bootstrap_accuracy(correct)
    assert out["mean"] == pytest.approx(2 / 3)
    assert out["ci95"] == [0.0, 1.0]
    assert out["per_seed"] == [1.0, 0.0, 1.0]


def test_seed_variance_widens_the_interval():
    rng = np.random.default_rng(1)
    steady = (rng.random((3, 300)) < 0.5).astype(float)
    noisy = steady.copy()
    noisy[0] = rng.random(300) < 0.2  # one run much worse than the others
    noisy[2] = rng.random(300) < 0.8
    width = lambda c: np.diff(bootstrap_accuracy(c)["ci95"])[0]  # noqa: E731
    assert width(noisy) > 2 * width(steady)


def test_identical_methods_differ_by_nothing():
    rng = np.random.default_rng(2)
    same = (rng.random((3, 100)) < 0.6).astype(float)
    rows = np.repeat(same[:1], 3, axis=0)  # every seed identical: seed resampling can't move it
    out = bootstrap_difference(rows, rows)
    assert out["difference"] == 0 and out["ci95"] == [0.0, 0.0] and out["p_value"] == 1.0


def test_a_method_right_everywhere_beats_one_wrong_everywhere():
    out = bootstrap_difference(np.ones((3, 50)), np.zeros((3, 50)), draws=999)
    assert out["difference"] == 1.0 and out["ci95"] == [1.0, 1.0]
    assert out["p_value"] == pytest.approx(2 / 1000)


def test_pairing_by_problem_narrows_the_difference():
    """Two methods that agree on most problems: pairing cancels the problem-to-problem variance, so the
    interval of the difference is far narrower than unpaired resampling would give."""
    rng = np.random.default_rng(3)
    base = (rng.random(400) < 0.5).astype(float)
    a = np.tile(base, (3, 1))
    b = a.copy()
    b[:, :20] = 1 - b[:, :20]  # differ on 20 problems only
    lo, hi = bootstrap_difference(a, b)["ci95"]
    assert hi - lo < 0.08  # unpaired, each mean alone has a 95 % width of about 0.1


def test_unpaired_problems_are_refused():
    with pytest.raises(ValueError, match="paired by problem"):
        bootstrap_difference(np.ones((2, 5)), np.ones((2, 6)))


def test_same_runs_difference_pairs_seeds_and_problems():
    """A booster that fixes the same 20 problems in every run (where they were wrong): the runs differ
    wildly (20 % to 80 %), but compared run against run that spread cancels, and the gain is clear."""
    from gsm8k_pipeline.stats import bootstrap_same_runs

    rng = np.random.default_rng(0)
    greedy = (rng.random((3, 100)) < np.array([[0.2], [0.5], [0.8]])).astype(float)  # very different runs
    boosted = greedy.copy()
    fixed = np.flatnonzero(greedy[0] == 0)[:20]
    boosted[:, fixed] = 1
    out = bootstrap_same_runs(boosted, greedy)
    assert out["difference"] == pytest.approx((boosted - greedy).mean())
    assert out["ci95"][0] > 0 and out["p_value"] < 0.01
    # Independent seed resampling (bootstrap_difference) sees the runs' spread and can't tell.
    assert bootstrap_difference(boosted, greedy)["ci95"][0] < 0
    assert bootstrap_same_runs(greedy, greedy) == {"difference": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0}
