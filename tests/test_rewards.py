"""Each reward is bounded and can't be gamed by repeating tags, several answers or padding."""

import random

import pytest

from gsm8k_pipeline.rewards import REWARDS, correctness, format_approx, format_exact, number_match, reward_funcs

GOOD = "<start_working_out>Ann has 3+4=<<3+4=7>>7 pens.<end_working_out><SOLUTION>7</SOLUTION>"
BOUNDS = {"format_exact": (0, 1), "format_approx": (-1, 1), "correctness": (0, 1), "number_match": (0, 1)}


def total(text, gold="7"):
    return sum(score(text, gold) for score in REWARDS.values())


def test_a_perfect_completion_earns_every_reward():
    assert [REWARDS[n](GOOD, "#### 7") for n in BOUNDS] == [1.0, 1.0, 1.0, 1.0]


def test_wrong_answer_keeps_format_rewards_only():
    wrong = GOOD.replace("<SOLUTION>7", "<SOLUTION>8")
    assert (format_exact(wrong), format_approx(wrong), correctness(wrong, "7"), number_match(wrong, "7")) == (
        1,
        1,
        0,
        0,
    )


@pytest.mark.parametrize("k", [2, 3, 10])
def test_repeating_tags_never_pays(k):
    repeated = GOOD.replace("<end_working_out>", "<end_working_out>" * k)
    assert format_exact(repeated) == 0
    assert format_approx(repeated) < format_approx(GOOD)
    assert total(repeated) < total(GOOD)
    spam = GOOD * k
    assert total(spam) < total(GOOD)


def test_several_solution_blocks_earn_no_answer_reward():
    hedge = GOOD + "<SOLUTION>8</SOLUTION>"
    other_order = GOOD.replace("<SOLUTION>7</SOLUTION>", "<SOLUTION>8</SOLUTION><SOLUTION>7</SOLUTION>")
    for text in (hedge, other_order):
        assert correctness(text, "7") == 0 and number_match(text, "7") == 0
        assert total(text) < total(GOOD)


# Hedges inside one block, gold last so that a last-number grader would pay for them.
IN_BLOCK_HEDGES = ["8 or 7", "between 6 and 7", "5, 6, 7", "8 (or maybe 7)", "8 = 7", "8 (7)", "1e7"]


@pytest.mark.parametrize("hedge", IN_BLOCK_HEDGES)
def test_a_hedge_inside_the_block_earns_no_answer_reward(hedge):
    text = GOOD.replace("<SOLUTION>7", f"<SOLUTION>{hedge}")
    assert correctness(text, "7") == 0 and number_match(text, "7") == 0
    wrong = GOOD.replace("<SOLUTION>7", "<SOLUTION>8")
    assert total(text) == total(wrong)  # worth exactly what one wrong answer is
    boxed = f"<start_working_out>7<end_working_out>\\boxed{{{hedge}}}"
    assert number_match(boxed, "7") == 0


def test_arithmetic_equal_to_the_answer_is_not_a_hedge():
    assert number_match(GOOD.replace("<SOLUTION>7", "<SOLUTION>3 + 4 = 7"), "7") == 1


def test_padding_adds_nothing():
    padded_inside = GOOD.replace("pens.", "pens." + " lots of words 7 7 7" * 200)
    padded_after = GOOD + " and more text 7" * 200
    assert total(padded_inside) <= total(GOOD)
    assert total(padded_after) < total(GOOD)


def test_solution_must_hold_just_the_number():
    assert correctness(GOOD.replace("<SOLUTION>7", "<SOLUTION>7 or 8"), "7") == 0
    assert correctness(GOOD.replace("<SOLUTION>7", "<SOLUTION>$7.00"), "7") == 1
    assert correctness("</SOLUTION>7<SOLUTION>", "7") == 0


def test_number_match_gives_partial_credit_without_format():
    assert number_match("so the answer is 7", "#### 7") == 1
    # ... but not for a tag-less hedge (issue 20, item 6).
    for hedge in ("maybe 5 or 7", "5, 6, 7", "between 5 and 7", "<SOLUTION>5 or 7", "the answer is 5 or 7"):
        assert number_match(hedge, "#### 7") == 0, hedge
    assert correctness("so the answer is 7", "#### 7") == 0


def test_every_reward_is_bounded_on_random_completions():
    rng = random.Random(0)
    pieces = ["<start_working_out>", "<end_working_out>", "<SOLUTION>", "</SOLUTION>", "7", "8", " ", "x", "\n"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        for name, (low, high) in BOUNDS.items():
            assert low <= REWARDS[name](text, "7") <= high, (name, text)


def test_trl_reward_functions_take_conversational_completions():
    funcs = reward_funcs(["correctness", "format_exact"])
    assert [f.__name__ for f in funcs] == ["correctness", "format_exact"]
    completions = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "no"}]]
    assert funcs[0](completions=completions, answer=["7", "7"], prompts=None) == [1.0, 0.0]
    assert funcs[1](completions=[GOOD, "no"], answer=["7", "7"]) == [1.0, 0.0]
