import json

import pytest

from gsm8k_pipeline.leaderboard import mcnemar_exact, model_ids, render_markdown
from gsm8k_pipeline.results import record
from gsm8k_pipeline.traces import first_success

GOOD = "<start_working_out>2+2=<<2+2=4>>4<end_working_out><SOLUTION>4</SOLUTION>"


def test_first_success_needs_the_right_answer_in_the_exact_format():
    assert first_success(["the answer is 4", GOOD.replace(">4<", ">5<"), GOOD, GOOD], "4") == 2
    assert first_success(["4", "<SOLUTION>4</SOLUTION>"], "4") is None


def test_mcnemar_exact_matches_a_binomial_test():
    a = [True] * 10 + [False] * 2 + [True] * 5
    b = [False] * 10 + [True] * 2 + [True] * 5
    result = mcnemar_exact(a, b)
    assert (result["only_first_correct"], result["only_second_correct"]) == (10, 2)
    assert result["p_value"] == pytest.approx(0.03857421875)  # 2 * P(X <= 2), X ~ Bin(12, 1/2)
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0


def test_model_ids_cover_every_evaluated_model():
    assert model_ids({"budgets": [8, 16]}) == [
        "base", "prep_sft", "full_sft_8", "full_sft_16", "grpo_8", "grpo_16", "sft_from_traces_8", "sft_from_traces_16"]


def test_records_and_markdown():
    params = {"base_model": {"name": "tiny"}, "budgets": [8]}
    metrics = lambda mid, acc: {"model_id": mid, "accuracy": acc, "accuracy_ci95": [acc / 2, min(1, acc * 2)],  # noqa: E731
                                "thinking_proportion": 1.0, "answer_proportion": 1.0, "n": 10, "generation": {}}
    records = [record(metrics(m, a), params, "abc") for m, a in
               [("base", 0.0), ("full_sft_8", 0.3), ("sft_from_traces_8", 0.4), ("grpo_8", 0.2)]]
    assert records[1]["method"] == "full_sft" and records[1]["budget"] == 8
    assert records[2]["method"] == "sft_from_traces" and records[0]["budget"] is None
    md = render_markdown(records, [{"budget": 8, "first": "sft_from_traces_8", "second": "full_sft_8",
                                    "only_first_correct": 3, "only_second_correct": 1, "p_value": 0.625}])
    ranked = [line.split("|")[2].strip() for line in md.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert ranked[:4] == ["sft_from_traces_8", "full_sft_8", "grpo_8", "base"]
    assert "| 8 | 30.0 % (15.0–60.0) | 20.0 % (10.0–40.0) | 40.0 % (20.0–80.0) |" in md
    assert "0.625" in md
    json.dumps(records)  # all.json must serialise
