"""Publishing and LEADERBOARD.md (workspace/publish.py) on a local folder and on sftp://: every agent ranked,
republished runs counted once, hostile or impossible results skipped, every cell escaped."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
from pathlib import Path

import pytest

from conftest import REPO
from gsm8k_pipeline.results import Invalid, check_consistent, validate_record
from gsm8k_pipeline.stats import wilson_interval
from gsm8k_pipeline.workspace.publish import LEADERBOARD, cell, publish
from gsm8k_pipeline.workspace.store import open_store
from support.workspace import (
    COMPARISONS,
    gsm8k,
    record,
    results_doc,
    table_rows,
    write_metrics,
    write_results,
)


def test_cell_escaping():
    text = cell("<img src=x onerror=alert(1)>|x\n| 1 | [a](http://e) **b**")
    assert "<" not in text and ">" not in text and "\n" not in text
    assert re.search(r"(?<!\\)\|", text) is None
    assert r"\[a\]\(http" in text and r"\*\*b\*\*" in text


def test_hostile_result_files_are_skipped_and_escaped(ws, tmp_path, capsys):
    metrics = write_metrics(tmp_path / "all.json", {"full_sft_8": 0.62, "grpo_8": 0.55})
    code, out, err = gsm8k(capsys, "publish", "--workspace", ws.url, "--agent-id", "alice", "--metrics", metrics)
    assert code == 0, err
    good = record("sft_traces_8", 0.7)
    hostile = {
        "bad.json": b"{not json",
        "binary.json": b"\xff\xfe\x00garbage",
        "array.json": b"[1, 2, 3]",
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "nan.json": json.dumps(results_doc("mallory", [good])).replace('"accuracy": 0.7', '"accuracy": NaN').encode(),
        "huge-int.json": json.dumps(results_doc("mallory", [good])).replace('"n": 200', '"n": ' + "9" * 5000).encode(),
        "inf.json": json.dumps(results_doc("mallory", [good])).replace('"accuracy": 0.7', '"accuracy": 1e999').encode(),
        "types.json": results_doc("mallory", [record("x_8", 0.5, n="200")]),
        "acc-high.json": results_doc("mallory", [record("x_8", 1.5)]),
        "acc-neg.json": results_doc("mallory", [record("x_8", -0.1)]),
        "ci.json": results_doc("mallory", [record("x_8", 0.5, accuracy_ci95=[0.9, 1.0])]),
        # impossible results: each within range alone, inconsistent together
        "n-1.json": results_doc("mallory", [record("x_8", 0.7, n=1, accuracy_ci95=[0.2, 0.9])]),
        "n-huge.json": results_doc("mallory", [record("x_8", 1.0, n=10**9, accuracy_ci95=[1.0, 1.0])]),
        "ci-narrow.json": results_doc("mallory", [record("x_8", 0.5, accuracy_ci95=[0.49, 0.51])]),
        "bool.json": results_doc("mallory", [record("x_8", True)]),
        "budget.json": results_doc("mallory", [record("x_8", 0.5, budget=1e300)]),
        "spoof.json": results_doc("alice", [record("x_8", 0.99)]),  # claims to be alice, sits in mallory/
        "format.json": {**results_doc("mallory", [good]), "format": "other/9"},
        "no-models.json": results_doc("mallory", []),
        "big.json": b" " * (5 * 2**20) + json.dumps(results_doc("mallory", [good])).encode(),
    }
    for name, content in hostile.items():
        write_results(ws, "mallory", name, content)
    # path-traversal-looking and injection ids are just text: shown escaped, never used as paths
    injection = [
        "../../../etc/passwd",
        "<img src=x onerror=alert(1)>",
        "a|b\n| 1 | 100 % | pwned |",
        "[click](http://evil) **x**",
        "<script>alert(1)</script>",
    ]
    write_results(ws, "mallory", "ok.json", results_doc("mallory", [record(i, 0.3) for i in injection]))
    os.mkfifo(ws.root / "artifacts/results/mallory/fifo.json")  # would hang a naive reader
    (ws.root / "artifacts/results/mallory/link.json").symlink_to("/etc/passwd")
    (ws.root / "artifacts/results/Evil Agent").mkdir()
    write_results(ws, "Evil Agent", "x.json", results_doc("Evil Agent", [good]))

    code, out, err = gsm8k(capsys, "workspace", "leaderboard", "--workspace", ws.url)
    assert code == 0, err
    for name in (*hostile, "fifo.json", "link.json"):
        assert f"mallory/{name}: skipped" in err, name
    assert "Evil Agent" in err
    md = (ws.root / "LEADERBOARD.md").read_text()
    rows = table_rows(md)
    assert len(rows) == 2 + len(injection)
    assert all(len(r) == 12 for r in rows), rows
    assert [r[2] for r in rows[:2]] == [r"full\_sft\_8", r"grpo\_8"]  # best first
    assert rows[0][1] == "62.0 % (55.1–68.4)" and rows[0][7] == "alice"
    assert "<img" not in md and "<script" not in md and "](http" not in md and "pwned |" not in md
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in md
    assert "../../../etc/passwd" in md
    # The spoofed record is not on the board. (Rows, not the whole text: a results file's name carries the
    # microseconds it was written at, which can read "...20.996210Z..." and so contain "0.99".)
    assert not [r for r in rows if r[1].startswith("99.0 %") or r[-1] == "spoof.json"], rows
    assert "## Skipped result files" in md
    assert not (ws.root / "etc").exists()
    # publishing again still works with all of that in place
    code, out, err = gsm8k(capsys, "publish", "--workspace", ws.url, "--agent-id", "bob", "--metrics", metrics)
    assert code == 0, err
    assert len(table_rows((ws.root / "LEADERBOARD.md").read_text())) == 4 + len(injection)


@pytest.mark.parametrize(
    ("accuracy", "ci95", "n", "reason"),
    [
        (0.7, [0.2, 0.9], 1, "not a whole number of correct answers out of n = 1"),
        (0.6, [0.5, 0.7], 200, "not the 95 % Wilson interval of 120/200"),
        (1.0, [1.0, 1.0], 10**6 + 1, r"n is not an integer in \[1, 1000000\]"),
        (1 / 3, [0.0, 1.0], 3, "not the 95 % Wilson interval of 1/3"),
    ],
)
def test_check_consistent_refuses_impossible_results(accuracy, ci95, n, reason):
    with pytest.raises(Invalid, match=reason):
        validate_record({"id": "x", "accuracy": accuracy, "accuracy_ci95": ci95, "n": n})


def test_check_consistent_accepts_what_evaluate_writes():
    for k, n in [(0, 1), (1, 1), (61, 200), (1319, 1319), (7, 1319), (123_456, 10**6)]:
        check_consistent(k / n, list(wilson_interval(k, n)), n)


def test_leaderboard_ranks_every_agent_and_dedups_republished_runs(ws, tmp_path):
    with ws.store() as store:
        r1 = publish(
            store,
            "alice",
            metrics=write_metrics(tmp_path / "a.json", {"grpo_8": 0.4, "full_sft_8": 0.8}),
            params=REPO / "params.yaml",
            dvc_lock=tmp_path / "none.lock",
        )
        assert any("dvc_lock_sha256 is null" in w for w in r1.warnings)
        publish(
            store,
            "bob",
            metrics=write_metrics(tmp_path / "b.json", {"grpo_8": 0.6}),
            params=REPO / "params.yaml",
            dvc_lock=REPO / "dvc.yaml",
        )
        report = publish(
            store, "alice", metrics=tmp_path / "a.json", params=REPO / "params.yaml", dvc_lock=tmp_path / "none.lock"
        ).leaderboard  # the same run again
    assert [(r["agent_id"], r["id"]) for r in report.rows] == [
        ("alice", "full_sft_8"),
        ("bob", "grpo_8"),
        ("alice", "grpo_8"),
    ]
    assert report.files == 3 and not report.skipped
    doc = json.loads((ws.root / r1.path).read_text())
    assert doc["comparisons"] == COMPARISONS and "mcnemar" not in doc  # the Answer's, as all.json has them
    commit = doc["provenance"]["git_commit"]
    assert doc["agent_id"] == "alice" and (commit is None or re.fullmatch(r"[0-9a-f]{40}", commit))
    assert set(doc["provenance"]) == {"git_commit", "git_dirty", "params_digest", "dvc_lock_sha256"}
    assert re.fullmatch(r"artifacts/results/alice/\d{8}T\d{6}\.\d{6}Z\.alice\.results\.[0-9a-f]{8}\.json", r1.path)
    md = (ws.root / "LEADERBOARD.md").read_text()
    assert "80.0 % (73.9–85.0)" in md and "| bob |" in md


def _publisher(url: str, options: dict, agent: str, metrics: str, times: int, barrier, queue) -> None:
    try:
        barrier.wait(timeout=120)
        with open_store(url, **options) as store:
            for _ in range(times):
                publish(store, agent, metrics=Path(metrics), params=REPO / "params.yaml", dvc_lock=REPO / "dvc.yaml")
        queue.put((agent, None))
    except BaseException as exc:  # reported to the test, which fails on it
        queue.put((agent, repr(exc)))


def test_concurrent_publishers_leave_a_leaderboard_of_every_result_file(ws, tmp_path):
    """A publisher whose replace of LEADERBOARD.md lost the race three times left a board without another's
    rows (issue 20, item 11): whoever writes last, the board covers every results file."""
    processes, times = 6, 4
    metrics = write_metrics(tmp_path / "all.json", {"grpo_8": 0.5, "full_sft_8": 0.6})
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_publisher, args=(ws.url, ws.options, f"pub-{k}", str(metrics), times, barrier, queue))
        for k in range(processes)
    ]
    for p in procs:
        p.start()
    errors = [err for _, err in (queue.get(timeout=600) for _ in procs) if err]
    for p in procs:
        p.join(timeout=60)
    assert errors == []
    files = list((ws.root / "artifacts" / "results").rglob("*.json"))
    assert len(files) == processes * times
    board = (ws.root / "LEADERBOARD.md").read_text()
    assert f"from {processes} agents in {processes * times} files." in board, board[:600]
    assert all(f"pub-{k}" in board for k in range(processes))


class _OthersPublishing:
    """The workspace's store as one publisher sees it while others publish: each time it is about to replace
    LEADERBOARD.md, one more agent's results file lands (made after its collect, so the board it is writing
    misses it), until `arrivals` run out. The other agents' own boards are the ones its replaces overwrite."""

    def __init__(self, store, arrivals: list):
        self._store, self._arrivals = store, arrivals

    def __getattr__(self, name):
        return getattr(self._store, name)

    def replace(self, path: str, data: bytes):
        if path == LEADERBOARD and self._arrivals:
            self._arrivals.pop(0)()
        return self._store.replace(path, data)


def test_a_board_stale_at_every_replace_is_made_again_until_it_covers_every_file(ws, tmp_path):
    """Issue 20, item 11, made deterministic: four results files land while one publisher regenerates the
    board, each after it collected and before its replace. A publisher that gave up after three rounds (the
    code before the fix) left a board without the last of them; the board must cover every file."""
    metrics = write_metrics(tmp_path / "all.json", {"grpo_8": 0.5, "full_sft_8": 0.6})
    late = [f"late-{k}" for k in range(4)]
    arrivals = [
        lambda agent=agent: write_results(ws, agent, "r.json", results_doc(agent, [record("grpo_8", 0.4)]))
        for agent in late
    ]
    with open_store(ws.url, **ws.options) as store:
        publish(
            _OthersPublishing(store, arrivals),
            "alice",
            metrics=metrics,
            params=REPO / "params.yaml",
            dvc_lock=REPO / "dvc.yaml",
        )
    assert arrivals == []  # every arrival happened
    board = (ws.root / "LEADERBOARD.md").read_text()
    assert "from 5 agents in 5 files." in board, board[:600]
    assert all(agent in board for agent in ["alice", *late])
