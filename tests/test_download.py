import json
import subprocess

import pytest
import yaml

from conftest import make_checkout, run, test_params


def stage(tmp_path, source: str, **data):
    params = test_params(data={"source": source, **data})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out = tmp_path / "data"
    proc = subprocess.run(
        ["gsm8k", "download", "--params", str(path), "--out-dir", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    return proc, out


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_synthetic_default_writes_all_outputs(tmp_path):
    """Test size: 312 synthetic train rows, the last 12 carved into validation.jsonl."""
    from gsm8k_pipeline.synthetic import generate_splits

    proc, out = stage(tmp_path, "synthetic")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train"]["rows"] == 300 and stats["validation"]["rows"] == 12 and stats["test"]["rows"] == 24
    assert stats["train_test_question_overlap"] == 0 and stats["validation_test_question_overlap"] == 0
    train, validation, test = (read(out / f"{s}.jsonl") for s in ("train", "validation", "test"))
    assert all(r["answer"].rsplit("\n", 1)[1].startswith("#### ") for r in train)
    # Disjoint from train and test, and carving it left train.jsonl as a 300-row source would have made it.
    questions = [{r["question"] for r in rows} for rows in (train, validation, test)]
    assert not questions[0] & questions[1] and not questions[1] & questions[2]
    knobs = {k: v for k, v in test_params()["data"]["synthetic"].items() if k not in ("n_train", "n_test", "seed")}
    assert train == generate_splits(300, 24, 0, **knobs)[0]


def test_no_validation_split_and_one_too_large(tmp_path):
    (tmp_path / "none").mkdir()
    proc, out = stage(tmp_path / "none", "synthetic", validation=0)
    assert proc.returncode == 0, proc.stderr
    assert (out / "validation.jsonl").read_text() == "" and len(read(out / "train.jsonl")) == 312
    folder = local_source(tmp_path, [row(i) for i in range(1, 6)], [row(9)])
    proc, out = stage(tmp_path, f"local:{folder}", validation=5)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "data.validation (5) leaves no train rows: the source's train split has 5" in proc.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_local_real_gsm8k_row_counts_through_snakemake(tmp_path, shared_gsm8k):
    repo = make_checkout(tmp_path / "repo", test_params(data={"source": f"local:{shared_gsm8k}"}))
    run(["snakemake", "--cores", "1", "data/gsm8k/train.jsonl", "data/gsm8k/test.jsonl"], repo)
    train, validation = (read(repo / f"data/gsm8k/{s}.jsonl") for s in ("train", "validation"))
    assert (len(train), len(validation)) == (7473 - 12, 12)
    assert train + validation == read(shared_gsm8k / "train.jsonl")  # the source's last 12 rows, in order
    assert len((repo / "data/gsm8k/test.jsonl").read_text().splitlines()) == 1319


@pytest.mark.parametrize(
    "corruption, reason",
    [
        (lambda line: line[:-20], "not valid JSON"),
        (lambda line: json.dumps({"question": "q"}), "missing key 'answer'"),
        (
            lambda line: json.dumps({"question": "q", "answer": "no marker"}),
            "answer must contain exactly one '####' line",
        ),
        (
            lambda line: json.dumps({"question": "q", "answer": "x\n#### many"}),
            "gold answer after '####' is not a number",
        ),
    ],
)
def test_corrupted_line_is_named_and_nothing_is_left(tmp_path, shared_gsm8k, corruption, reason):
    copy = tmp_path / "gsm8k"
    copy.mkdir()
    (copy / "test.jsonl").write_text((shared_gsm8k / "test.jsonl").read_text())
    lines = (shared_gsm8k / "train.jsonl").read_text().splitlines()
    lines[4999] = corruption(lines[4999])
    (copy / "train.jsonl").write_text("\n".join(lines) + "\n")
    proc, out = stage(tmp_path, f"local:{copy}")
    assert proc.returncode == 2
    assert f"{copy / 'train.jsonl'}:5000: {reason}" in proc.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_failed_run_removes_previous_outputs(tmp_path):
    proc, out = stage(tmp_path, "synthetic")
    assert proc.returncode == 0
    proc, out = stage(tmp_path, f"local:{tmp_path / 'missing'}")
    assert proc.returncode == 2 and "missing" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == []


def test_bad_row_error_is_on_the_snakemake_console(tmp_path):
    """profiles/default (show-failed-logs) prints the failed job's log, where the one-line error is;
    without that profile the console only names the log file."""
    bad = tmp_path / "bad"
    proc, _ = stage(tmp_path, "synthetic")
    assert proc.returncode == 0
    (tmp_path / "data").rename(bad)
    lines = (bad / "train.jsonl").read_text().splitlines()
    lines[199] = json.dumps({"question": "q", "answer": "no marker"})
    (bad / "train.jsonl").write_text("\n".join(lines) + "\n")
    repo = make_checkout(tmp_path / "repo", test_params(data={"source": f"local:{bad}"}))
    message = f"{bad / 'train.jsonl'}:200: answer must contain exactly one '####' line"
    for extra, shown in (([], True), (["--workflow-profile", "none"], False)):
        proc = run(["snakemake", "--cores", "1", *extra, "data/gsm8k/train.jsonl"], repo, check=False)
        assert proc.returncode == 1
        assert (message in proc.stdout + proc.stderr) is shown
        assert message in (repo / "logs/download.log").read_text()


def local_source(tmp_path, train: list[dict], test: list[dict]):
    folder = tmp_path / "src"
    folder.mkdir()
    for name, rows in (("train", train), ("test", test)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def row(i: int, question: str | None = None) -> dict:
    return {
        "question": question or f"Tom has {i} apples and buys {i} more. How many now?",
        "answer": f"{i}+{i}=<<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i}",
    }


def contaminated(tmp_path):
    """24 train rows; 24 test rows of which rows 3, 5, ..., 25 - 1 repeat a train question, recased and respaced."""
    train = [row(i) for i in range(1, 25)]
    test = [
        row(100 + i) if i % 2 else row(i, "  " + row(i)["question"].upper().replace(" ", "\n ")) for i in range(1, 25)
    ]
    return local_source(tmp_path, train, test)


def test_contamination_is_a_one_line_warning_and_in_stats(tmp_path):
    proc, out = stage(tmp_path, f"local:{contaminated(tmp_path)}")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "contamination" in line]
    assert len(warnings) == 1, proc.stderr
    assert warnings[0].startswith(
        "gsm8k download: warning: contamination: 12 of 24 test questions (50.0 %) also appear in the train split"
    )
    assert "e.g. test row 2 = train row 2: 'TOM HAS 2 APPLES AND BUYS 2 MORE." in warnings[0]  # spaces collapsed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train_test_question_overlap"] == 12
    assert stats["contamination"]["test_rows_in_train"] == list(range(2, 25, 2))


def test_contamination_refuse_fails_the_download_in_one_line(tmp_path):
    params = test_params(data={"source": f"local:{contaminated(tmp_path)}", "contamination": "refuse"})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        ["gsm8k", "download", "--params", str(path), "--out-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("gsm8k download: error: data.contamination is refuse: 12 of 24 test questions")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_clean_data_gives_no_warning(tmp_path):
    proc, _ = stage(tmp_path, f"local:{local_source(tmp_path, [row(i) for i in range(5)], [row(9)])}", validation=2)
    assert proc.returncode == 0 and "warning" not in proc.stderr


@pytest.mark.parametrize(
    "bad, reason",
    [
        (
            {"question": "x" * 4_001, "answer": "#### 1"},
            "'question' has 4,001 characters, more than the limit of 4,000",
        ),
        (
            {"question": "q", "answer": "y" * 8_000 + "\n#### 1"},
            "'answer' has 8,007 characters, more than the limit of 8,000",
        ),
    ],
)
def test_oversized_rows_are_refused_with_file_and_line(tmp_path, bad, reason):
    folder = local_source(tmp_path, [row(1), row(2), bad], [row(3)])
    proc, _ = stage(tmp_path, f"local:{folder}")
    assert proc.returncode == 2
    assert f"{folder / 'train.jsonl'}:3: {reason}" in proc.stderr


def test_a_line_past_the_byte_cap_is_refused_before_decoding(tmp_path):
    from gsm8k_pipeline.task import MAX_LINE_BYTES, DataError, read_jsonl

    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(row(1)).encode() + b"\n" + b"\xff" * (3 * MAX_LINE_BYTES))  # no end, not UTF-8
    with pytest.raises(DataError, match=rf"^{path}:2: line longer than 1,048,576 bytes"):
        read_jsonl(path)


def test_real_gsm8k_is_well_within_the_row_limits(shared_gsm8k):
    from gsm8k_pipeline.task import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, read_jsonl

    rows = read_jsonl(shared_gsm8k / "train.jsonl") + read_jsonl(shared_gsm8k / "test.jsonl")
    assert max(len(r["question"]) for r in rows) < MAX_QUESTION_CHARS / 4  # 985
    assert max(len(r["answer"]) for r in rows) < MAX_ANSWER_CHARS / 6  # 1,228
