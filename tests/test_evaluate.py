import pytest

from gsm8k_pipeline.evaluate import score, summarize, wilson_interval


@pytest.mark.parametrize("k, n", [(0, 10), (5, 10), (81, 263), (263, 263)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)


def test_score_and_summarize():
    rows = [
        {"question": "q1", "answer": "a\n#### 7"},
        {"question": "q2", "answer": "b\n#### 1,200"},
        {"question": "q3", "answer": "c\n#### 3"},
    ]
    completions = [
        "<start_working_out>3+4=7<end_working_out><SOLUTION>7</SOLUTION>",
        "<start_working_out>lots<end_working_out><SOLUTION>$1,200.00</SOLUTION>",
        "I think 4",
    ]
    records = score(rows, completions)
    assert [r["correct"] for r in records] == [True, True, False]
    assert [r["has_thinking"] for r in records] == [True, True, False]
    assert records[1]["gold"] == "1200" and records[1]["extracted"] == "1200"
    m = summarize(records, "x", {"max_new_tokens": 8}, seconds=2.0)
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["answer_proportion"] == pytest.approx(2 / 3)
    assert m["n"] == 3 and m["problems_per_second"] == 1.5
