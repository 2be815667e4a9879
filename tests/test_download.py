import json
import subprocess

import pytest
import yaml

from conftest import make_checkout, run, test_params


def stage(tmp_path, source: str):
    params = test_params(data={"source": source})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out = tmp_path / "data"
    proc = subprocess.run(["gsm8k", "download", "--params", str(path), "--out-dir", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    return proc, out


def test_synthetic_default_writes_all_outputs(tmp_path):
    proc, out = stage(tmp_path, "synthetic")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train"]["rows"] == 300 and stats["test"]["rows"] == 24
    assert stats["train_test_question_overlap"] == 0
    rows = [json.loads(l) for l in (out / "train.jsonl").read_text().splitlines()]
    assert all(r["answer"].rsplit("\n", 1)[1].startswith("#### ") for r in rows)


def test_local_real_gsm8k_row_counts_through_snakemake(tmp_path, shared_gsm8k):
    repo = make_checkout(tmp_path / "repo", test_params(data={"source": f"local:{shared_gsm8k}"}))
    run(["snakemake", "--cores", "1", "data/gsm8k/train.jsonl", "data/gsm8k/test.jsonl"], repo)
    assert len((repo / "data/gsm8k/train.jsonl").read_text().splitlines()) == 7473
    assert len((repo / "data/gsm8k/test.jsonl").read_text().splitlines()) == 1319


@pytest.mark.parametrize("corruption, reason", [
    (lambda line: line[:-20], "not valid JSON"),
    (lambda line: json.dumps({"question": "q"}), "missing key 'answer'"),
    (lambda line: json.dumps({"question": "q", "answer": "no marker"}), "answer must contain exactly one '####' line"),
    (lambda line: json.dumps({"question": "q", "answer": "x\n#### many"}), "gold answer after '####' is not a number"),
])
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
