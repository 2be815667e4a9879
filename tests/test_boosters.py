"""maj@k and pass@k against closed forms."""

import itertools
import math

import pytest

from gsm8k_pipeline import PipelineError
from gsm8k_pipeline.boosters import majority, pass_at_k, protocols


@pytest.mark.parametrize("n, c, k", [(n, c, k) for n in range(1, 8) for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_is_the_chance_a_random_k_subset_holds_a_correct_sample(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets), abs=1e-12)
    # Chen et al.'s numerically stable product form.
    stable = 1.0 if n - c < k else 1 - math.prod(1 - k / i for i in range(n - c + 1, n + 1))
    assert pass_at_k(n, c, k) == pytest.approx(stable, abs=1e-12)


def test_pass_at_k_special_cases():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the fraction correct
    assert pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 0, 4) == 0.0  # n = k: any correct sample
    assert pass_at_k(200, 0, 100) == 0.0 and pass_at_k(200, 150, 100) == 1.0  # exact in big integers
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_majority_vote_matches_the_binomial_closed_form(k, p):
    """Each sample says the gold "7" with probability p, else the wrong "8". The vote is right when more than
    k/2 samples are; a tie (k even) goes to whichever answer came first, which is "7" half the time."""
    q = 1 - p
    expected = sum(math.comb(k, j) * p**j * q ** (k - j) for j in range(k // 2 + 1, k + 1))
    if k % 2 == 0:
        expected += 0.5 * math.comb(k, k // 2) * (p * q) ** (k // 2)
    total = 0.0
    for answers in itertools.product(["7", "8"], repeat=k):
        j = answers.count("7")
        total += p**j * q ** (k - j) * (majority(list(answers)) == "7")
    assert total == pytest.approx(expected, abs=1e-12)


def test_majority_ignores_missing_answers_and_breaks_ties_by_first_seen():
    assert majority([None, "3", None, "5", "5"]) == "5"
    assert majority(["3", "5", "5", "3"]) == "3"
    assert majority([None, None]) is None
    assert majority([]) is None


def test_protocols_and_the_k_check():
    assert protocols({"calculator": True, "samples_per_problem": 4, "k": 4}) == [
        "calculator",
        "maj@4",
        "pass@1",
        "pass@4",
    ]
    assert protocols({"calculator": False, "samples_per_problem": 0, "k": 4}) == []
    assert protocols({"calculator": False, "samples_per_problem": 3, "k": 1}) == ["maj@1", "pass@1"]
    # k > samples_per_problem is refused with the params' other clashes (check-params, every stage).
    from pathlib import Path

    from conftest import test_params
    from gsm8k_pipeline import params

    bad = test_params()
    bad["eval"]["boosters"] |= {"samples_per_problem": 2, "k": 4}
    with pytest.raises(PipelineError, match="eval.boosters.k"):
        params.validate(bad, Path("params.yaml"))
