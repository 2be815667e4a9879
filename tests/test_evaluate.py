import pytest

from gsm8k_pipeline.evaluate import debug_csv, score, summarize, wilson_interval


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


@pytest.mark.parametrize("extracted", [["7", None, "-3.5"], [None, None, None]])
def test_debug_csv_is_the_bytes_pandas_wrote(extracted):
    """debug.csv is written without pandas, and must stay the file it was: completions with commas, quotes,
    line breaks and non-ASCII text; answers that are None (one row, or the whole column); bools; the booster
    columns' floats, thirds included."""
    import pandas as pd

    rows = [{"question": f'q{i}, "quoted"', "answer": f"x\n#### {i}"} for i in range(3)]
    completions = ['a, b\n"c"', "é ∑ 1,200\r\nend", ""]
    records = score(rows, completions)
    for record, answer, third in zip(records, extracted, (0.0, 1 / 3, 2 / 3), strict=True):
        record.update({"extracted": answer, "correct:pass@1": third, "correct:maj@4": 1.0, "answers:sampled": "7||7|"})
    assert debug_csv(records) == pd.DataFrame(records).to_csv(index=False)


def test_metrics_and_debug_csv_carry_every_booster_of_the_selected_models(tmp_path):
    """The eval stage on a (random) tiny model: greedy stays the primary accuracy; calculator, maj@k, pass@1 and
    pass@k each get accuracy, interval and n, and debug.csv a per-problem column each; every pass's seconds go
    to timings.json, none to the result files. A model eval.boosters.models does not select gets none."""
    import dataclasses
    import json

    import pandas as pd

    from conftest import test_params
    from gsm8k_pipeline import base_model, evaluate, timings
    from gsm8k_pipeline.fileio import atomic_write_jsonl
    from gsm8k_pipeline.synthetic import generate_splits

    train, test = generate_splits(200, 6, 0)
    params = test_params(
        eval={
            "samples": 6,
            "batch_size": 3,
            "max_new_tokens": 8,
            "boosters": {"samples_per_problem": 3, "k": 2, "models": ["m"]},
        }
    )
    model, tokenizer = base_model.build_tiny(train, params["base_model"]["tiny"], seed=1, system=None)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    atomic_write_jsonl(tmp_path / "test.jsonl", test)
    config = evaluate.EvalConfig(
        model_path=tmp_path / "model",
        output_dir=tmp_path / "eval",
        output_file="m.json",
        test_file=tmp_path / "test.jsonl",
    )
    metrics = evaluate.main(params, config)
    written = json.loads((tmp_path / "eval/m.json").read_text())
    clock = json.loads((tmp_path / "eval/m/timings.json").read_text())
    results, measured = timings.split(metrics)
    assert written == results
    assert clock == {
        **measured,
        "load_seconds": clock["load_seconds"],
        "startup_seconds": clock["startup_seconds"],  # the process's, until the model was loaded
        "process_seconds": clock["process_seconds"],
    }
    assert 0 < clock["startup_seconds"] <= clock["process_seconds"]
    boosters = metrics["boosters"]
    assert list(boosters) == ["calculator", "maj@2", "pass@1", "pass@2"]
    for name, m in boosters.items():
        assert m["n"] == 6 and 0 <= m["accuracy_ci95"][0] <= m["accuracy"] <= m["accuracy_ci95"][1] <= 1
        assert clock["boosters"][name]["seconds"] > 0 and "seconds" not in written["boosters"][name]
    assert clock["seconds"] > 0 and clock["problems_per_second"] > 0 and clock["load_seconds"] > 0
    assert boosters["calculator"]["generation"]["calculator"] is True
    assert boosters["maj@2"]["generation"]["do_sample"] is True
    assert boosters["maj@2"]["generation"]["samples_per_problem"] == 3
    debug = pd.read_csv(tmp_path / "eval/m/debug.csv")
    for name in boosters:
        assert debug[f"correct:{name}"].mean() == pytest.approx(boosters[name]["accuracy"])
    assert (debug["answers:sampled"].fillna("").str.count(r"\|") == 2).all()  # 3 answers per problem
    summary = (tmp_path / "eval/m/summary.txt").read_text()
    assert "calculator" in summary and " s)" not in summary and "time" not in summary

    # A model eval.boosters.models does not select: the same greedy accuracy, and no booster at all.
    other = evaluate.main(params, dataclasses.replace(config, output_file="other.json"))
    assert "boosters" not in other and other["accuracy"] == metrics["accuracy"]
    assert not [c for c in pd.read_csv(tmp_path / "eval/other/debug.csv").columns if ":" in c]
