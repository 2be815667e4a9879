"""The message board (workspace/board.py) on a local folder and on sftp://: names that sort and parse,
hostile message files skipped, every option, and 8 processes x 50 posts with no locks."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gsm8k_pipeline.workspace import WorkspaceError
from gsm8k_pipeline.workspace.board import ID_RE, list_messages, normalize_id, parse_since, post, slugify
from support.stress import post_storm
from support.workspace import (
    gsm8k,
    gsm8k_proc,
)


def test_message_names_sort_and_parse():
    assert slugify("Try LoRA r=16 on GRPO traces!") == "try-lora-r-16-on-grpo-traces"
    assert slugify("Ünïcödé — ☃") == "unicode"
    assert slugify("☃☃") == "message"
    name = "20250102T030405.123456Z.a_b-c.experiment-proposal.try-this.0123abcd"
    m = ID_RE.fullmatch(name)
    assert (m["agent"], m["type"], m["slug"]) == ("a_b-c", "experiment-proposal", "try-this")
    assert normalize_id(f"message_board/{name}.md") == name
    for bad in ("../../etc/passwd", name + "/..", name.replace("a_b-c", "A"), "", name + "x"):
        with pytest.raises(WorkspaceError):
            normalize_id(bad)
    now = datetime(2025, 1, 2, 12, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2025, 1, 2, 10, tzinfo=UTC)
    assert parse_since("2025-01-01", now) == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_since("2025-01-01T05:00+02:00", now) == datetime(2025, 1, 1, 3, tzinfo=UTC)
    with pytest.raises(WorkspaceError):
        parse_since("yesterday", now)


def test_hostile_message_files_are_skipped(ws, capsys):
    with ws.store() as store:
        good = post(store, "alice", "question", "Is GRPO worth it?", "Asking for a friend.\n")
    board = ws.root / "message_board"
    stem = "20250101T000000.000000Z.mallory.claim.x.0000000"
    (board / f"{stem}1.md").write_bytes(b"no front matter")
    (board / f"{stem}2.md").write_bytes(b"---\nid: other\n---\n")
    (board / f"{stem}3.md").write_bytes(b"\xff\xfe")
    (board / f"{stem}4.md").write_text(f"---\nid: {stem}4\nagent_id: alice\ntype: claim\ntitle: spoof\n---\n")
    (board / f"{stem}5.md").write_text("---\n: [unclosed\n---\n")
    (board / "notes.txt").write_text("hi")
    (board / "..weird.md").write_text("hidden")
    os.mkfifo(board / f"{stem}6.md")
    (board / f"{stem}7.md").write_text(
        f'---\nid: {stem}7\nagent_id: mallory\ntype: claim\ntitle: "\\e[31mred\\e[0m"\n---\nbody \x1b[2J\n'
    )
    nested = "[" * 30_000 + "]" * 30_000  # segfaults libyaml if parsed
    (board / f"{stem}8.md").write_text(f"---\nid: {stem}8\nagent_id: mallory\ntype: claim\ntitle: {nested}\n---\n")
    month13 = stem.replace("20250101", "20251301") + "9"
    arabic_digits = stem.replace("2025", "\u0662\u0660\u0662\u0665") + "9"
    for name in (month13, arabic_digits):
        (board / f"{name}.md").write_text(f"---\nid: {name}\nagent_id: mallory\ntype: claim\ntitle: t\n---\n")
    code, out, err = gsm8k(capsys, "board", "list", "--workspace", ws.url, "--since", "2024-12-31")
    assert code == 0, err
    assert f"{month13}.md: not a message file" in err and f"{arabic_digits}.md: not a message file" in err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{stem}7") and lines[1].startswith(good.id)
    assert "\x1b" not in out
    for k in (1, 2, 3, 4, 5, 6, 8):
        assert f"{stem}{k}.md: " in err
    assert "notes.txt" in err
    code, out, err = gsm8k(capsys, "board", "read", "--workspace", ws.url, f"{stem}7")
    assert code == 0 and "\x1b" not in out and "body" in out
    code, _, err = gsm8k(capsys, "board", "read", "--workspace", ws.url, f"{stem}1")
    assert code == 2 and "malformed" in err
    code, _, err = gsm8k(capsys, "board", "read", "--workspace", ws.url, "../../etc/passwd")
    assert code == 2 and "not a message id" in err
    code, _, err = gsm8k(
        capsys,
        "board",
        "post",
        "--workspace",
        ws.url,
        "--agent-id",
        "bob",
        "--type",
        "result",
        "--title",
        "t",
        "--body",
        "b",
        "--reply-to",
        f"{stem}9",
    )
    assert code == 2 and "no such message" in err


def test_board_options(ws, tmp_path, capsys, monkeypatch):
    """The flags the walk-through doesn't use: --body-file, --reply-to, --since, --json; a mistyped URL."""
    monkeypatch.setenv("GSM8K_WORKSPACE", ws.url)
    plan = tmp_path / "plan.md"
    plan.write_text("# Plan\n\n- step 1\n")
    code, question, err = gsm8k(
        capsys,
        "board",
        "post",
        "--agent-id",
        "alice",
        "--type",
        "question",
        "--title",
        "Which lr?",
        "--body-file",
        plan,
    )
    assert code == 0, err
    question = question.strip()
    code, answer, err = gsm8k(
        capsys,
        "board",
        "post",
        "--agent-id",
        "bob",
        "--type",
        "result",
        "--title",
        "2e-5",
        "--body",
        "measured",
        "--reply-to",
        f"message_board/{question}.md",
    )
    assert code == 0, err
    code, out, _ = gsm8k(capsys, "board", "list", "--json", "--agent", "bob", "--since", "1h")
    [listed] = json.loads(out)
    assert listed["id"] == answer.strip() and listed["reply_to"] == question and listed["type"] == "result"
    code, out, _ = gsm8k(capsys, "board", "list", "--since", "2999-01-01")
    assert code == 0 and out == ""
    code, out, _ = gsm8k(capsys, "board", "list", "--type", "question")
    assert out.split()[0] == question
    code, out, _ = gsm8k(capsys, "board", "read", "--json", question)
    assert json.loads(out)["body"] == "# Plan\n\n- step 1\n"
    code, _, err = gsm8k(capsys, "board", "list", "--since", "99999999999w")
    assert code == 2 and "--since" in err
    code, _, err = gsm8k(
        capsys, "board", "post", "--agent-id", "bob", "--type", "claim", "--title", "t", "--body", "bad \udcff bytes"
    )
    assert code == 2 and "UTF-8" in err
    # a mistyped URL is refused rather than quietly starting a second workspace
    typo = ws.url.replace(str(ws.root), str(ws.root) + "-typo")
    code, _, err = gsm8k(
        capsys,
        "board",
        "post",
        "--workspace",
        typo,
        "--agent-id",
        "bob",
        "--type",
        "claim",
        "--title",
        "t",
        "--body",
        "b",
    )
    assert code == 2 and "not a workspace" in err and not Path(str(ws.root) + "-typo").exists()


def test_400_concurrent_posts_all_land(ws):
    """8 processes x 50 posts at once to one workspace: exactly 400 messages, all readable and listed."""
    result = post_storm(ws.url, processes=8, per_process=50, options=ws.options)
    assert result.errors == [] and result.posts == 400
    files = sorted(p.name for p in (ws.root / "message_board").iterdir())
    assert len(files) == 401 and "README.md" in files  # nothing hidden left behind: no temp files
    with ws.store() as store:
        listing = list_messages(store)
    assert listing.warnings == []
    assert len(listing.messages) == 400 and len({m.id for m in listing.messages}) == 400
    per_agent = {}
    for m in listing.messages:
        per_agent.setdefault(m.agent_id, []).append(m)
        k = int(m.title.rsplit("#", 1)[1])
        assert m.body == f"message {k} of 50 from {m.agent_id}\n"
    assert sorted(per_agent) == [f"storm-{k}" for k in range(8)]
    assert all(len(v) == 50 for v in per_agent.values())
    # and the real command lists them all
    proc = gsm8k_proc(ws.env, "board", "list", "--workspace", ws.url, "--type", "status-update")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 400 and proc.stderr == ""
