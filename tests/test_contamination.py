"""Contamination after the download: each eval counts the problems it scored that repeat a train question,
and the leaderboard shows the count above the Answer when it is not zero."""

import hashlib
import json

import pytest

from gsm8k_pipeline import PipelineError, contamination
from gsm8k_pipeline.leaderboard import main
from test_leaderboard import PARAMS, plant


def write_split(folder, rows_in_train: list[int], n: int = 10):
    """data/gsm8k as download leaves it: a test split of n rows and its stats.json."""
    test = folder / "test.jsonl"
    test.write_text("".join(json.dumps({"question": f"q{i}", "answer": "#### 1"}) + "\n" for i in range(n)))
    found = {"test_rows_in_train": rows_in_train, "test_rows": n, "example": None, "normalisation": "x"}
    (folder / "stats.json").write_text(
        json.dumps({"contamination": found, "test": {"sha256": hashlib.sha256(test.read_bytes()).hexdigest()}})
    )
    return test


def test_normalisation_ignores_case_and_spacing_but_not_numbers():
    assert contamination.normalise(" Tom  has\n3 APPLES ") == contamination.normalise("tom has 3 apples")
    assert contamination.normalise("tom has 3 apples") != contamination.normalise("tom has 4 apples")
    found = contamination.overlap([{"question": "A b"}, {"question": "c"}], [{"question": "x"}, {"question": "a  B"}])
    assert found["test_rows_in_train"] == [2] and found["example"]["train_row"] == 1


def test_an_eval_counts_the_contaminated_problems_it_scored(tmp_path):
    test = write_split(tmp_path, rows_in_train=[2, 5, 9])
    assert contamination.for_eval(test, 5) == {
        "evaluated_in_train": 2,
        "evaluated": 5,
        "split_in_train": 3,
        "split_rows": 10,
    }


def test_stats_of_another_test_file_fail_the_eval(tmp_path):
    test = write_split(tmp_path, rows_in_train=[1])
    test.write_text(test.read_text() + json.dumps({"question": "new", "answer": "#### 2"}) + "\n")
    with pytest.raises(PipelineError, match="stats.json describes another test.jsonl .*rerun the download stage"):
        contamination.for_eval(test, 5)


def test_a_test_file_without_download_stats_is_unknown(tmp_path):
    test = tmp_path / "test.jsonl"
    test.write_text("")
    assert contamination.for_eval(test, 5) is None


def plant_contamination(config, k: int | None):
    for path in config.eval_dir.glob("*.json"):
        metrics = json.loads(path.read_text())
        metrics["contamination"] = (
            None
            if k is None
            else {"evaluated_in_train": k, "evaluated": 60, "split_in_train": 2 * k, "split_rows": 120}
        )
        path.write_text(json.dumps(metrics))


def test_the_leaderboard_opens_with_the_contamination_when_there_is_some(tmp_path):
    config = plant(tmp_path, lambda model_id: [i % 2 for i in range(60)])
    plant_contamination(config, 15)
    main(PARAMS, config)
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    warning = (
        "**Contamination: 15 of the 60 test problems scored (25.0 %) also appear in the train split** "
        "(30 of 120 in the whole test split"
    )
    assert warning in board and board.index(warning) < board.index("## Answer")
    assert warning in (config.out_dir / "answer.rst").read_text()
    out = json.loads((config.out_dir / "all.json").read_text())
    assert out["contamination"]["evaluated_in_train"] == 15 and out["contamination"]["split_in_train"] == 30
    assert out["contamination"]["by_model"]["grpo_8_s0"] == 15
    assert out["models"]["base"]["contamination"]["evaluated_in_train"] == 15


@pytest.mark.parametrize(
    "k, note",
    [
        (0, "Contamination: none of the 60 test problems scored (nor of the 120 in the test split) appears"),
        (None, "Contamination unknown (eval metrics without the count) for: base, full_sft_16_s0"),
    ],
)
def test_no_contamination_is_a_quiet_note_at_the_end(tmp_path, k, note):
    config = plant(tmp_path, lambda model_id: [i % 2 for i in range(60)])
    plant_contamination(config, k)
    main(PARAMS, config)
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    assert note in board and board.index(note) > board.index("## Every model")
    assert "**Contamination" not in board and "Contamination" not in (config.out_dir / "answer.rst").read_text()
