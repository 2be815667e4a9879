"""A method's learning rate, chosen on the validation split: select.py's rule, `gsm8k select` on
candidates' validation metrics as the tune_eval stages write them, and the whole selection for real."""

import json
import os
import subprocess

import pytest
import yaml

from conftest import make_checkout, run, test_params
from gsm8k_pipeline.select import candidate_metrics, choose


def candidates(scores: dict[float, float]) -> list[dict]:
    return [{"learning_rate": r, "accuracy": a, "correct": round(a * 20), "n": 20} for r, a in scores.items()]


def test_the_best_validation_accuracy_wins_and_a_tie_goes_to_the_smaller_rate():
    chosen = choose(candidates({3e-3: 0.5, 3e-4: 0.4, 1e-3: 0.6}))
    assert chosen["chosen"] == 1e-3 and not chosen["at_edge"]
    assert [c["learning_rate"] for c in chosen["candidates"]] == [
        3e-4,
        1e-3,
        3e-3,
    ]  # by rate, whatever the grid's order
    assert choose(candidates({3e-3: 0.6, 1e-3: 0.6, 3e-4: 0.4}))["chosen"] == 1e-3  # a tie: the smaller
    assert choose(candidates({1e-3: 0.0, 3e-4: 0.0}))["chosen"] == 3e-4  # all equal: the smallest


@pytest.mark.parametrize(
    "scores, chosen, at_edge",
    [
        ({3e-4: 0.6, 1e-3: 0.5, 3e-3: 0.4}, 3e-4, True),  # the smallest: a smaller rate may be better still
        ({3e-4: 0.4, 1e-3: 0.5, 3e-3: 0.6}, 3e-3, True),  # the largest
        ({3e-4: 0.4, 1e-3: 0.6, 3e-3: 0.5}, 1e-3, False),
        ({1e-3: 0.5}, 1e-3, False),  # one value: no search, so no edge to speak of
    ],
)
def test_a_choice_at_the_grids_edge_says_so(scores, chosen, at_edge):
    result = choose(candidates(scores))
    assert (result["chosen"], result["at_edge"]) == (chosen, at_edge)


def test_an_absurd_rate_among_sane_ones_is_not_chosen_and_only_validation_is_read(tmp_path):
    """`gsm8k select` over a grid with one absurd rate (1e-12: the model doesn't move from prep_sft) among
    sane ones, from the validation metrics the candidates' evals wrote: the sane rate with the best score is
    chosen. The checkout has no test split at all, so the choice cannot have read it."""
    params = test_params(full_sft={"learning_rates": [1.0e-12, 1.0e-3, 3.0e-3]})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for rate, correct in ((1e-12, 2), (1e-3, 7), (3e-3, 5)):
        path = candidate_metrics("full_sft", 8, rate, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"model_id": path.stem, "accuracy": correct / 12, "correct": correct, "n": 12}))
    assert not (tmp_path / "data").exists()
    proc = subprocess.run(
        ["gsm8k", "select", "--method", "full_sft", "--budget", "8"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "full_sft at budget 8: learning rate 0.001;" in proc.stdout
    selection = json.loads((tmp_path / "metrics/select/full_sft_8.json").read_text())
    assert selection["chosen"] == 1e-3 and not selection["at_edge"] and selection["split"] == "validation"
    assert [(c["learning_rate"], c["correct"], c["n"]) for c in selection["candidates"]] == [
        (1e-12, 2, 12),
        (1e-3, 7, 12),
        (3e-3, 5, 12),
    ]
    # The final runs read the choice back: --learning-rate-from.
    from gsm8k_pipeline.training import chosen_rate

    assert chosen_rate(tmp_path / "metrics/select/full_sft_8.json") == 1e-3


@pytest.mark.slow
def test_an_absurd_rate_trained_for_real_loses_to_a_sane_one_and_test_is_never_read(tmp_path):
    """Snakemake builds full_sft's selection from nothing over a grid of a sane rate (3e-4) and an absurd one
    (1.0): both candidates train from a prep_sft that answers some problems (one-step problems, small numbers,
    a small model: 25 % on validation at 3e-4, measured on the 2-core machine), the absurd one wrecks it, and
    the sane one is chosen on its validation score. Once downloaded, the test split is overwritten with a line
    that is not JSON (its time kept, so no engine sees a change): a stage before the final evals that read it
    would fail. About 80 CPU-seconds."""
    params = test_params(
        data={"validation": 40, "synthetic": {"n_train": 440, "max_steps": 1, "max_operand": 3, "max_value": 6}},
        base_model={"tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}},
        prep_sft={"samples": 400, "epochs": 2, "learning_rate": 5.0e-3, "batch_size": 16, "max_length": 128},
        eval={"max_new_tokens": 40},
        full_sft={"learning_rates": [3.0e-4, 1.0]},
    )
    repo = make_checkout(tmp_path / "repo", params)
    run(["snakemake", "--cores", "1", "data/gsm8k/test.jsonl"], repo)
    test_split = repo / "data/gsm8k/test.jsonl"
    kept = test_split.stat()
    test_split.write_text("not JSON: only the final evals read the test split\n")
    os.utime(test_split, ns=(kept.st_atime_ns, kept.st_mtime_ns))

    run(["snakemake", "--cores", "1", "metrics/select/full_sft_8.json"], repo)
    selection = json.loads((repo / "metrics/select/full_sft_8.json").read_text())
    correct = {c["learning_rate"]: c["correct"] for c in selection["candidates"]}
    assert correct[3.0e-4] > correct[1.0], correct  # chosen on its score, not by the tie rule
    assert selection["chosen"] == 3.0e-4 and selection["split"] == "validation"
    assert test_split.read_text().startswith("not JSON")


def test_a_missing_candidate_is_a_one_line_error(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(test_params(), sort_keys=False))
    proc = subprocess.run(
        ["gsm8k", "select", "--method", "grpo", "--budget", "8"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(
        "no validation score for grpo's candidate at learning rate 5e-05 (run tune_eval_grpo)"
    )
