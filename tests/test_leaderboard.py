"""The leaderboard stage on planted eval results: records, groups over seeds, the Answer, the plots."""

import json

import pandas as pd
import pytest

from gsm8k_pipeline.leaderboard import LeaderboardConfig, main, model_ids
from gsm8k_pipeline.results import record
from gsm8k_pipeline.stats import wilson_interval
from gsm8k_pipeline.traces import first_success

GOOD = "<start_working_out>2+2=<<2+2=4>>4<end_working_out><SOLUTION>4</SOLUTION>"
PARAMS = {"base_model": {"name": "tiny"}, "budgets": [8, 16], "seeds": [0, 1, 2]}


def test_first_success_needs_the_right_answer_in_the_exact_format():
    assert first_success(["the answer is 4", GOOD.replace(">4<", ">5<"), GOOD, GOOD], "4") == 2
    assert first_success(["4", "<SOLUTION>4</SOLUTION>"], "4") is None


def test_model_ids_cover_every_run():
    ids = model_ids({"budgets": [8, 16], "seeds": [0, 1]})
    assert ids[:2] == ["base", "prep_sft"] and len(ids) == 2 + 3 * 2 * 2
    assert {"full_sft_8_s0", "grpo_16_s1", "sft_from_traces_8_s1"} <= set(ids)


def test_records_carry_method_budget_and_seed():
    metrics = {"model_id": "grpo_16_s2", "accuracy": 0.5, "accuracy_ci95": [0.2, 0.8], "thinking_proportion": 1.0,
               "answer_proportion": 1.0, "n": 10, "generation": {}}
    r = record(metrics, PARAMS, "abc")
    assert (r["method"], r["budget"], r["seed"]) == ("grpo", 16, 2)
    assert record(metrics | {"model_id": "prep_sft"}, PARAMS, None)["seed"] is None


def plant(tmp_path, accuracy_of) -> LeaderboardConfig:
    """Eval outputs for every model of PARAMS (model id -> list of 0/1 per problem) and GRPO training logs."""
    config = LeaderboardConfig(eval_dir=tmp_path / "eval", out_dir=tmp_path / "out", models_dir=tmp_path / "models")
    config.out_dir.mkdir()
    for model_id in model_ids(PARAMS):
        correct = accuracy_of(model_id)
        (config.eval_dir / model_id).mkdir(parents=True)
        pd.DataFrame({"correct": correct}).to_csv(config.eval_dir / model_id / "debug.csv", index=False)
        k, n = sum(correct), len(correct)
        (config.eval_dir / f"{model_id}.json").write_text(json.dumps({
            "model_id": model_id, "accuracy": k / n, "accuracy_ci95": list(wilson_interval(k, n)), "n": n,
            "thinking_proportion": 1.0, "answer_proportion": 1.0, "generation": {}}))
    for b in PARAMS["budgets"]:
        for s in PARAMS["seeds"]:
            log = config.models_dir / "grpo" / str(b) / f"s{s}" / "train_log.csv"
            log.parent.mkdir(parents=True)
            pd.DataFrame({"step": range(1, 9), "epoch": [0.25 * i for i in range(1, 9)],
                          "reward": [1.0 + 0.1 * i for i in range(8)]}).to_csv(log, index=False)
    return config


def test_the_answer_names_a_clear_winner_and_says_when_the_data_cant_tell(tmp_path):
    def accuracy_of(model_id):  # GRPO right on all 60 problems; the two SFTs alike, right on half
        if model_id.startswith("grpo"):
            return [1] * 60
        return [i % 2 for i in range(60)]

    config = plant(tmp_path, accuracy_of)
    main(PARAMS, config)
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    assert board.index("## Answer") < board.index("## Methods by budget") < board.index("## Every model")
    answer = board[board.index("## Answer"): board.index("## Methods by budget")]
    assert "at budget 8, grpo − full_sft = +50.0 (95 % CI +36.7 to +63.3, p = 0.0002): grpo is better" in answer
    assert "sft_from_traces − full_sft = +0.0 (95 % CI +0.0 to +0.0, p = 1): the data can't tell" in answer
    out = json.loads((config.out_dir / "all.json").read_text())
    assert out["groups"]["grpo_8"]["per_seed"] == [1.0, 1.0, 1.0]
    assert out["comparisons"]["grpo_vs_full_sft_16"]["ci95"][0] > 0.3
    # Two epochs of four steps: the first epoch's mean reward against the last's, on the same problems.
    assert out["grpo_reward"]["grpo_8_s0"] == {"first": pytest.approx(1.15), "last": pytest.approx(1.55),
                                               "compared": "first vs last epoch (same problems)"}
    assert len(out["models"]) == 2 + 3 * 2 * 3
    for png in ("accuracy_vs_budget.png", "grpo_reward.png"):
        assert (config.out_dir / png).read_bytes()[:4] == b"\x89PNG"
    curve = pd.read_csv(config.out_dir / "accuracy_vs_budget.csv")
    assert len(curve) == 3 * 2 * 3 and set(curve["seed"]) == {0, 1, 2}
