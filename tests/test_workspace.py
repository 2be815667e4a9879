"""The collaborative workspace (gsm8k workspace|board|artifacts|publish) on a local folder and on sftp://
against a real OpenSSH server on loopback (tests/sshd.py): conventions enforced (agent ids, no overwrite,
hostile files from others), 8 processes x 50 posts with no locks, credentials never leaked."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import REPO
from gsm8k_pipeline.results import Invalid, check_consistent, validate_record
from gsm8k_pipeline.stats import wilson_interval
from gsm8k_pipeline.workspace import AlreadyExists, WorkspaceError, redact_url
from gsm8k_pipeline.workspace.artifacts import put
from gsm8k_pipeline.workspace.board import ID_RE, list_messages, normalize_id, parse_since, post, slugify
from gsm8k_pipeline.workspace.layout import init
from gsm8k_pipeline.workspace.publish import cell, publish
from gsm8k_pipeline.workspace.store import open_store
from sshd import Sshd
from support.stress import post_storm

SECRET = "s3cr3t-Pa55word"


# --- fixtures & helpers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@dataclass
class Backend:
    name: str
    root: Path  # where the workspace lives on disk (for sftp: the server side, on this machine)
    url: str
    options: dict
    env: dict = field(repr=False)  # for `gsm8k` subprocesses
    server: Sshd | None = None

    def store(self):
        return open_store(self.url, **self.options)


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GSM8K_WORKSPACE", "GSM8K_AGENT_ID", "SSH_AUTH_SOCK")}
    env.update(extra)
    return env


@pytest.fixture(params=["file", "sftp"])
def backend(request, tmp_path, monkeypatch) -> Backend:
    monkeypatch.delenv("GSM8K_WORKSPACE", raising=False)
    monkeypatch.delenv("GSM8K_AGENT_ID", raising=False)
    root = tmp_path / "ws"
    if request.param == "file":
        return Backend("file", root, str(root), {}, _clean_env())
    server: Sshd = request.getfixturevalue("sshd")
    # In-process CLI calls find the key and known_hosts where ssh clients look: $HOME/.ssh.
    monkeypatch.setenv("HOME", str(server.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return Backend("sftp", root, server.url(root), server.storage_options, server.client_env(), server)


@pytest.fixture
def ws(backend) -> Backend:
    """An initialised workspace."""
    with backend.store() as store:
        init(store)
    return backend


def gsm8k(capsys, *argv) -> tuple[int, str, str]:
    """`gsm8k ARGV` in this process (fast); returns (exit code, stdout, stderr)."""
    from gsm8k_pipeline.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def gsm8k_proc(env: dict, *argv, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The real `gsm8k` command, in a subprocess."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "gsm8k"), *map(str, argv)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(root: Path) -> dict:
    """Every file (hidden ones too) and directory under root, with contents."""
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = p.read_bytes() if p.is_file() and not p.is_symlink() else ("dir" if p.is_dir() else "other")
    return out


def record(model_id: str, acc: float, n: int = 200, **extra) -> dict:
    """A record as the leaderboard stage builds it (gsm8k_pipeline.results) from what evaluate writes:
    accuracy k/n with its Wilson interval; then `extra` on top."""
    from gsm8k_pipeline import results

    sane = isinstance(n, int) and not isinstance(acc, bool) and 0 <= acc <= 1  # hostile cases break the rest
    ci = list(wilson_interval(round(acc * n), n)) if sane else [0, 1]
    metrics = {
        "model_id": model_id,
        "accuracy": acc,
        "accuracy_ci95": ci,
        "thinking_proportion": 1.0,
        "answer_proportion": 1.0,
        "n": n,
        "generation": {"max_new_tokens": 12},
    }
    r = results.record(metrics, {"base_model": {"name": "tiny"}}, None)
    r.update(extra)
    return r


# The Answer's differences as metrics/all.json holds them (leaderboard.aggregate); publish shares them.
COMPARISONS = {
    "grpo_vs_full_sft_8": {
        "first": "grpo",
        "second": "full_sft",
        "budget": 8,
        "difference": 0.05,
        "ci95": [-0.1, 0.2],
        "p_value": 0.5,
    }
}


def write_metrics(path: Path, accs: dict[str, float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"models": {m: record(m, a) for m, a in accs.items()}, "comparisons": COMPARISONS}))
    return path


def write_results(ws: Backend, agent: str, name: str, content) -> Path:
    """Plant a results file as another agent would (by hand, no checks)."""
    d = ws.root / "artifacts" / "results" / agent
    d.mkdir(parents=True, exist_ok=True)
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    (d / name).write_bytes(data)
    return d / name


def results_doc(agent: str, models: list, **extra) -> dict:
    doc = {
        "format": "gsm8k-results/1",
        "agent_id": agent,
        "published_at": "2025-01-02T03:04:05.000000Z",
        "provenance": {"git_commit": "abc123", "git_dirty": False, "params_digest": "p" * 16, "dvc_lock_sha256": None},
        "models": models,
        "comparisons": {},
    }
    doc.update(extra)
    return doc


def table_rows(md: str) -> list[list[str]]:
    """The leaderboard's data rows, split on unescaped pipes."""
    rows = []
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| rank"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


# --- naming & parsing ---------------------------------------------------------------------------------


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


def test_redaction():
    assert redact_url(f"sftp://bob:{SECRET}@host:22/x") == "sftp://bob:***@host:22/x"
    assert redact_url("sftp://bob@host/x") == "sftp://bob@host/x"
    assert redact_url("/plain/path") == "/plain/path"


def test_cell_escaping():
    text = cell("<img src=x onerror=alert(1)>|x\n| 1 | [a](http://e) **b**")
    assert "<" not in text and ">" not in text and "\n" not in text
    assert re.search(r"(?<!\\)\|", text) is None
    assert r"\[a\]\(http" in text and r"\*\*b\*\*" in text


# --- 1. layout --------------------------------------------------------------------------------------


def test_init_lays_out_and_never_overwrites(backend, capsys):
    code, out, err = gsm8k(capsys, "workspace", "init", backend.url)
    assert code == 0, err
    for rel in (
        "README.md",
        "message_board/README.md",
        "LEADERBOARD.md",
        *(f"artifacts/{k}/README.md" for k in ("scripts", "results", "checkpoints", "data")),
    ):
        assert (backend.root / rel).is_file(), rel
    readme = (backend.root / "README.md").read_text()
    assert "Conventions" in readme and "gsm8k board post" in readme and "gsm8k publish" in readme
    (backend.root / "README.md").write_text("edited by a human\n")
    code, out, _ = gsm8k(capsys, "workspace", "init", backend.url)
    assert code == 0 and "created 0 files, kept 7 existing" in out
    assert (backend.root / "README.md").read_text() == "edited by a human\n"


# --- 4. conventions enforced ---------------------------------------------------------------------------

BAD_IDS = [
    "../x",
    "A",
    "",
    "a" * 65,
    "ünï",
    "Alice",
    "-x",
    "_x",
    "x y",
    "x.y",
    "x/y",
    "x\n",
    "ａ",
    "k\u212a",
    "..",
    "x\x00",
    "$(id)",
]


def test_bad_agent_ids_are_refused_and_write_nothing(ws, tmp_path, capsys, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    metrics = write_metrics(tmp_path / "all.json", {"grpo_8": 0.5})
    before = snapshot(ws.root)
    for bad in BAD_IDS:
        for argv in (
            [
                "board",
                "post",
                "--workspace",
                ws.url,
                f"--agent-id={bad}",
                "--type",
                "claim",
                "--title",
                "t",
                "--body",
                "b",
            ],
            ["artifacts", "put", "--workspace", ws.url, f"--agent-id={bad}", script, "scripts/"],
            ["publish", "--workspace", ws.url, f"--agent-id={bad}", "--metrics", metrics],
        ):
            code, out, err = gsm8k(capsys, *argv)
            assert code == 2, (bad, argv[0])
            assert "agent id" in err and err.count("\n") == 1, err
            assert out == ""
        if "\x00" in bad:
            continue  # no environment variable can hold a NUL
        # ... and through the environment variable
        monkeypatch.setenv("GSM8K_AGENT_ID", bad)
        code, _, err = gsm8k(
            capsys, "board", "post", "--workspace", ws.url, "--type", "claim", "--title", "t", "--body", "b"
        )
        assert code == 2 and "agent id" in err
        monkeypatch.delenv("GSM8K_AGENT_ID")
    # reading filters refuse them too
    code, _, err = gsm8k(capsys, "board", "list", "--workspace", ws.url, "--agent", "../x")
    assert code == 2 and "agent id" in err
    assert snapshot(ws.root) == before
    # a bad id does not even create a workspace that doesn't exist yet
    fresh = ws.root.parent / "fresh"
    url = ws.url.replace(str(ws.root), str(fresh))
    code, _, _ = gsm8k(
        capsys,
        "board",
        "post",
        "--workspace",
        url,
        "--agent-id",
        "../x",
        "--type",
        "claim",
        "--title",
        "t",
        "--body",
        "b",
    )
    assert code == 2 and not fresh.exists()
    # the edges of the valid range
    for good in ("a" * 64, "0", "a_b-c9"):
        code, out, err = gsm8k(
            capsys,
            "board",
            "post",
            "--workspace",
            ws.url,
            "--agent-id",
            good,
            "--type",
            "claim",
            "--title",
            "ok",
            "--body",
            "b",
        )
        assert code == 0, err
        assert f".{good}.claim.ok." in out


def test_nothing_is_ever_overwritten(ws, tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text("v1\n")
    common = ["--workspace", ws.url]
    code, out, err = gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", script, "scripts/")
    assert code == 0 and out.strip() == "artifacts/scripts/alice/train.py", err
    alice_file = ws.root / "artifacts/scripts/alice/train.py"
    # one's own file: a second put of the same name fails and changes nothing
    script.write_text("v2\n")
    code, out, err = gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", script, "scripts/")
    assert code == 2 and "already exists" in err and "--new-version" in err
    assert alice_file.read_text() == "v1\n"
    # --new-version picks the next free name, every time
    for k in (2, 3):
        script.write_text(f"v{k}\n")
        code, out, err = gsm8k(
            capsys, "artifacts", "put", *common, "--agent-id", "alice", script, "scripts/", "--new-version"
        )
        assert code == 0 and out.strip() == f"artifacts/scripts/alice/train.v{k}.py", err
        assert (ws.root / f"artifacts/scripts/alice/train.v{k}.py").read_text() == f"v{k}\n"
    assert alice_file.read_text() == "v1\n"
    # another agent's file: bob's put of the same name lands in his own folder
    script.write_text("bob's\n")
    code, out, _ = gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "bob", script, "scripts/")
    assert code == 0 and out.strip() == "artifacts/scripts/bob/train.py"
    assert alice_file.read_text() == "v1\n"
    # ... and no name reaches into someone else's folder
    for target in (
        "scripts/../alice/train.py",
        "scripts/alice/train.py",
        "../scripts/",
        "scripts/.hidden",
        "models/",
        "scripts/a b",
    ):
        code, _, err = gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "bob", script, target)
        assert code == 2, target
    odd = tmp_path / "my script.py"
    odd.write_text("x")
    code, _, err = gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "bob", odd, "scripts/")
    assert code == 2 and "KIND/NEWNAME" in err
    # the store's primitive itself refuses to replace anyone's file, message or result
    with ws.store() as store:
        msg = post(store, "alice", "claim", "mine", "body")
        for rel in ("artifacts/scripts/alice/train.py", msg.path, "README.md"):
            before = (ws.root / rel).read_bytes()
            with pytest.raises(AlreadyExists):
                store.write_new(rel, b"overwritten by bob")
            assert (ws.root / rel).read_bytes() == before
    # directories: claimed whole, then --new-version
    ck = tmp_path / "ckpt"
    (ck / "sub").mkdir(parents=True)
    (ck / "w.bin").write_bytes(b"\x00" * 1000)
    (ck / "sub" / "cfg.json").write_text("{}")
    (ck / ".cache").write_text("hidden")
    code, out, err = gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", ck, "checkpoints/")
    assert code == 0 and "hidden file, not uploaded" in err
    assert (ws.root / "artifacts/checkpoints/alice/ckpt/sub/cfg.json").read_text() == "{}"
    assert not (ws.root / "artifacts/checkpoints/alice/ckpt/.cache").exists()
    code, _, err = gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", ck, "checkpoints/")
    assert code == 2 and "already exists" in err
    code, out, _ = gsm8k(
        capsys, "artifacts", "put", *common, "--agent-id", "alice", ck, "checkpoints/", "--new-version"
    )
    assert code == 0 and out.splitlines()[0] == "artifacts/checkpoints/alice/ckpt.v2"
    # list and get (never overwriting a local file either)
    code, out, _ = gsm8k(capsys, "artifacts", "list", *common, "--agent", "alice")
    listed = [line.split("\t")[0] for line in out.splitlines()]
    assert "scripts/alice/train.v3.py" in listed and "checkpoints/alice/ckpt.v2/sub/cfg.json" in listed
    assert not any(p.startswith("scripts/bob") for p in listed)
    dest = tmp_path / "got"
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ckpt", dest)
    assert code == 0, err
    assert (dest / "sub" / "cfg.json").read_text() == "{}" and (dest / "w.bin").stat().st_size == 1000
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ckpt", dest / "w.bin")
    assert code == 2 and "never overwritten" in err and (dest / "w.bin").stat().st_size == 1000
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "scripts/../../../etc/passwd", tmp_path / "p")
    assert code == 2


def _put_worker(url, options, agent, path, new_version, queue):
    try:
        with open_store(url, **options) as store:
            queue.put((agent, put(store, agent, path, "results/shared.json", new_version=new_version).path))
    except AlreadyExists:
        queue.put((agent, None))


def test_concurrent_puts_of_one_name_never_overwrite(ws, tmp_path):
    """8 processes put the same name at once: exactly one wins; with --new-version all 8 land, intact."""
    ctx = mp.get_context("fork")
    files = []
    for k in range(8):
        f = tmp_path / f"w{k}.json"
        f.write_text(json.dumps({"writer": k, "pad": "x" * 50_000}))  # big enough to interleave
        files.append(f)
    for new_version in (False, True):
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_put_worker, args=(ws.url, ws.options, "same", str(f), new_version, queue))
            for f in files
        ]
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        won = [path for _, path in results if path]
        if not new_version:
            assert len(won) == 1 and won[0] == "artifacts/results/same/shared.json"
            first = json.loads((ws.root / won[0]).read_text())
        else:
            assert len(won) == 8 and len(set(won)) == 8
            assert sorted(won) == sorted(f"artifacts/results/same/shared.v{k}.json" for k in range(2, 10))
            writers = {json.loads((ws.root / p).read_text())["writer"] for p in won}
            assert writers == set(range(8))
    assert json.loads((ws.root / "artifacts/results/same/shared.json").read_text()) == first
    assert not [p for p in (ws.root / "artifacts/results/same").iterdir() if p.name.startswith(".")]


def test_sftp_create_exclusive_primitive_against_real_sshd(sshd, tmp_path):
    """What OpenSSH really does: EXCL open, plain rename and hardlink refuse an existing target;
    posix-rename (what sshfs's mv uses) overwrites — which is why write_new never uses it."""
    import asyncssh
    from fsspec.asyn import sync

    root = tmp_path / "ws"
    root.mkdir()
    store = open_store(sshd.url(root), **sshd.storage_options)
    sftp = store.sftp
    a, b = str(root / "a"), str(root / "b")
    (root / "a").write_text("A")
    (root / "b").write_text("B")

    def attempt(coro_fn):
        try:
            result = sync(store.fs.loop, coro_fn)
        except asyncssh.SFTPError:
            return "refused"
        if hasattr(result, "close"):
            sync(store.fs.loop, result.close)
        return "done"

    assert attempt(lambda: sftp.open(b, "xb")) == "refused"
    assert attempt(lambda: sftp.rename(a, b)) == "refused"
    assert attempt(lambda: sftp.link(a, b)) == "refused"
    assert attempt(lambda: sftp.mkdir(b)) == "refused"
    assert (root / "b").read_text() == "B"
    assert attempt(lambda: sftp.posix_rename(a, b)) == "done"
    assert (root / "b").read_text() == "A"  # overwritten: never used for anything but LEADERBOARD.md
    store.write_new("c", b"C")
    with pytest.raises(AlreadyExists):
        store.write_new("c", b"D")
    assert (root / "c").read_text() == "C"
    assert sorted(p.name for p in root.iterdir()) == ["b", "c"]  # no temp file left behind
    store.close()


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
    assert "0.99" not in md and "99.0 %" not in md  # the spoofed record is not on the board
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


def test_board_and_artifact_options(ws, tmp_path, capsys, monkeypatch):
    """The flags the walk-through doesn't use: --body-file, --reply-to, --since, --json, KIND, one-file get."""
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
    code, out, err = gsm8k(capsys, "artifacts", "put", "--agent-id", "bob", plan, "data/plan-copy.md")
    assert code == 0 and out.strip() == "artifacts/data/bob/plan-copy.md", err
    code, out, _ = gsm8k(capsys, "artifacts", "list", "data", "--json")
    assert [e["path"] for e in json.loads(out)] == ["data/bob/plan-copy.md"]
    code, out, _ = gsm8k(capsys, "artifacts", "list", "scripts")
    assert out == ""
    code, out, err = gsm8k(capsys, "artifacts", "get", "data/bob/plan-copy.md", tmp_path)
    assert code == 0 and (tmp_path / "plan-copy.md").read_text() == plan.read_text(), err
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


def test_symlinks_cannot_lead_writes_out_of_a_local_workspace(tmp_path, capsys):
    root, outside = tmp_path / "ws", tmp_path / "outside"
    outside.mkdir()
    with open_store(str(root)) as store:
        init(store)
    (root / "artifacts/results/alice").symlink_to(outside)
    metrics = write_metrics(tmp_path / "all.json", {"grpo_8": 0.5})
    code, _, err = gsm8k(capsys, "publish", "--workspace", root, "--agent-id", "alice", "--metrics", metrics)
    assert code == 2 and "outside the workspace" in err
    assert list(outside.iterdir()) == []


# --- 5. no locks, nothing lost ---------------------------------------------------------------------------


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


def test_collaborate_from_zero_with_the_real_cli(backend, tmp_path):
    """The README's "Collaborate" walk-through with the installed command. On sftp the URL carries a
    password: it must never show up in any output or any file written to the workspace."""
    url = backend.url
    if backend.name == "sftp":
        url = backend.server.url(backend.root, password=SECRET)
    env = dict(backend.env, GSM8K_WORKSPACE=url, GSM8K_AGENT_ID="alice")
    outputs = []

    def run(*argv, ok=True):
        proc = gsm8k_proc(env, *argv)
        outputs.append(proc.stdout + proc.stderr)
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc

    run("workspace", "init", url)
    proposal = run(
        "board", "post", "--type", "experiment-proposal", "--title", "GRPO with 8 generations", "--body", "Plan: ..."
    ).stdout.strip()
    assert ID_RE.fullmatch(proposal)
    script = tmp_path / "run.sh"
    script.write_text("uv run snakemake --cores 1 metrics/all.json\n")
    run("artifacts", "put", script, "scripts/")
    metrics = write_metrics(tmp_path / "metrics" / "all.json", {"grpo_8": 0.61, "full_sft_8": 0.58})
    published = run("publish", "--metrics", metrics).stdout
    assert "published artifacts/results/alice/" in published and "2 results from 1 file" in published
    listing = run("board", "list").stdout
    assert proposal in listing and "GRPO with 8 generations" in listing
    # a wrong port: the error names the workspace without its password
    bad = run(
        "board",
        "list",
        "--workspace",
        url.replace(f":{backend.server.port}/", ":1/") if backend.server else str(tmp_path / "missing"),
        ok=False,
    )
    assert "error" in bad.stderr and bad.stderr.count("\n") == 1

    board = (backend.root / "LEADERBOARD.md").read_text()
    assert [r[2] for r in table_rows(board)] == [r"grpo\_8", r"full\_sft\_8"]
    assert all(r[7] == "alice" for r in table_rows(board))
    if backend.name == "sftp":
        assert any("root:***@" in o for o in outputs)
    for text in outputs:
        assert SECRET not in text
    for path, content in snapshot(backend.root).items():
        if isinstance(content, bytes):
            assert SECRET.encode() not in content, path
            assert b"127.0.0.1" not in content, path  # the workspace never records where it lives


# --- backends that can't be exercised here ------------------------------------------------------------------


def test_unreachable_and_unsupported_backends_fail_clearly(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved HF token, no AWS config, no ssh keys
    for url, expected in [
        ("s3://bucket/ws", "s3fs"),
        ("hf://buckets/someone/ws", "hf://buckets/someone/ws: cannot"),
        ("hf://someone/model", "must be buckets"),
        ("gs://bucket/ws", "unsupported"),
        (f"sftp://bob:{SECRET}@127.0.0.1:1/ws", "sftp://bob:***@127.0.0.1:1/ws"),
    ]:
        code, out, err = gsm8k(capsys, "workspace", "init", url)
        assert code == 2 and expected in err and err.count("\n") == 1, err
        assert SECRET not in out + err


def test_sftp_host_key_is_checked(sshd, tmp_path, capsys, monkeypatch):
    """Unlike sshfs's default, an unknown host key is refused (known_hosts from the usual place)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    for name in ("id_ed25519", "id_ed25519.pub"):
        (home / ".ssh" / name).write_bytes((sshd.home / ".ssh" / name).read_bytes())
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    code, _, err = gsm8k(capsys, "workspace", "init", sshd.url(tmp_path / "ws"))
    assert code == 2 and "known_hosts" in err
    assert not (tmp_path / "ws").exists()


# --- directory uploads: complete or invisible; symlinks and modes -----------------------------------------


def _tree(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    for k in range(n):
        (root / f"f{k:05d}.bin").write_bytes(b"%05d" % k * 20)
    return root


def test_an_interrupted_directory_upload_stays_invisible(ws, tmp_path, capsys):
    """`artifacts put` killed (SIGKILL) mid-upload: the half-uploaded folder is neither listed nor
    downloadable; the --new-version retry lands complete."""
    src = _tree(tmp_path / "big", 400)
    env = dict(ws.env, GSM8K_WORKSPACE=ws.url, GSM8K_AGENT_ID="alice")
    claimed = ws.root / "artifacts/checkpoints/alice/big"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gsm8k"), "artifacts", "put", str(src), "checkpoints/"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not (claimed.is_dir() and any(p.name.endswith(".bin") for p in os.scandir(claimed))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    uploaded = len([p for p in os.scandir(claimed) if p.name.endswith(".bin")])
    assert 0 < uploaded < 400 and not (claimed / ".manifest.json").exists()

    common = ["--workspace", ws.url]
    code, out, err = gsm8k(capsys, "artifacts", "list", *common)
    assert code == 0 and "checkpoints/alice/big/" not in out
    assert "checkpoints/alice/big: incomplete upload" in err
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/big", tmp_path / "got")
    assert code == 2 and "incomplete upload" in err and err.count("\n") == 1
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/big/f00000.bin", tmp_path / "one")
    assert code == 2 and "incomplete upload" in err
    assert not (tmp_path / "got").exists() and not (tmp_path / "one").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind

    code, out, err = gsm8k(
        capsys, "artifacts", "put", *common, "--agent-id", "alice", src, "checkpoints/", "--new-version"
    )
    assert code == 0 and out.splitlines()[0] == "artifacts/checkpoints/alice/big.v2", err
    code, out, err = gsm8k(capsys, "artifacts", "list", *common)
    assert len([line for line in out.splitlines() if line.startswith("checkpoints/alice/big.v2/")]) == 400
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/big.v2", tmp_path / "got")
    assert code == 0, err
    assert snapshot(tmp_path / "got") == snapshot(src)


def test_get_checks_files_against_the_manifest(ws, tmp_path, capsys):
    src = _tree(tmp_path / "ck", 3)
    common = ["--workspace", ws.url]
    assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", src, "checkpoints/")[0] == 0
    remote = ws.root / "artifacts/checkpoints/alice/ck"
    (remote / "planted.bin").write_bytes(b"not part of the upload")
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ck", tmp_path / "a")
    assert code == 0, err
    assert snapshot(tmp_path / "a") == snapshot(src)  # the planted file is not downloaded
    # same size, other bytes: the hash catches it, and nothing appears locally
    (remote / "f00001.bin").write_bytes(b"X" * 100)
    for what, dest in (("ck", tmp_path / "b"), ("ck/f00001.bin", tmp_path / "c")):
        code, _, err = gsm8k(capsys, "artifacts", "get", *common, f"checkpoints/alice/{what}", dest)
        assert code == 2 and "f00001.bin: differs from its manifest" in err, err
        assert not dest.exists()
    (remote / "f00001.bin").unlink()
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ck", tmp_path / "d")
    assert code == 2 and "f00001.bin: listed in the manifest but missing" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "ck", "ws"]


def test_an_unreadable_file_fails_the_put_before_any_name_is_claimed(ws):
    """Every file is read before the name is claimed, so a failing put (or its --new-version retry) leaves
    no empty or partial folder. As root, put runs as nobody (root reads a mode-000 file), on a store opened
    before: nobody can't read the venv's modules or the ssh key."""
    with tempfile.TemporaryDirectory() as tmp, ws.store() as store:
        os.chmod(tmp, 0o755)
        src = _tree(Path(tmp) / "ck", 5)
        (src / "f00003.bin").chmod(0)
        before = snapshot(ws.root)
        euid = os.geteuid()
        for new_version in (False, True):
            if euid == 0:
                os.seteuid(65534)
            try:
                with pytest.raises(WorkspaceError, match=r"f00003\.bin: cannot read \(Permission denied\): nothing"):
                    put(store, "alice", src, "checkpoints/", new_version=new_version)
            finally:
                os.seteuid(euid)
        assert snapshot(ws.root) == before


def test_top_level_symlinks_are_refused_unless_followed(ws, tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o640)
    folder = _tree(tmp_path / "folder", 2)
    (tmp_path / "link").symlink_to(secret)
    (tmp_path / "dirlink").symlink_to(folder)
    common = ["--workspace", ws.url, "--agent-id", "alice"]
    before = snapshot(ws.root)
    # Through a linked parent too (issue 20, item 5): `put dirlink/f00000.bin` uploaded in silence.
    for link in ("link", "dirlink", "dirlink/", "dirlink/f00000.bin"):
        code, _, err = gsm8k(capsys, "artifacts", "put", *common, f"{tmp_path}/{link}", "data/")
        assert code == 2 and "a symlink (to " in err and "--follow-symlinks" in err, err
        assert ("its parent" in err) == link.endswith(".bin"), err
    assert snapshot(ws.root) == before
    # Followed, an artifact is named as given, not after the link's target.
    code, out, err = gsm8k(capsys, "artifacts", "put", *common, tmp_path / "link", "data/", "--follow-symlinks")
    assert code == 0 and out.strip() == "artifacts/data/alice/link", err
    published = ws.root / "artifacts/data/alice/link"
    assert published.read_text() == "s3cret\n" and published.stat().st_mode & 0o777 == 0o640
    code, out, err = gsm8k(capsys, "artifacts", "put", *common, tmp_path / "dirlink", "data/", "--follow-symlinks")
    assert code == 0 and out.splitlines()[0] == "artifacts/data/alice/dirlink", err


def test_uploads_keep_file_modes_never_group_or_other_writable(ws, tmp_path, capsys):
    src = tmp_path / "m"
    src.mkdir()
    modes = {"private.txt": 0o600, "group.txt": 0o640, "run.sh": 0o755, "open.txt": 0o666, "ro.txt": 0o444}
    for name, mode in modes.items():
        (src / name).write_text(name)
        (src / name).chmod(mode)
    common = ["--workspace", ws.url, "--agent-id", "alice"]
    assert gsm8k(capsys, "artifacts", "put", *common, src, "scripts/")[0] == 0
    assert gsm8k(capsys, "artifacts", "put", *common, src / "group.txt", "scripts/")[0] == 0
    got = {
        p.name: p.stat().st_mode & 0o777
        for p in (ws.root / "artifacts/scripts/alice/m").iterdir()
        if not p.name.startswith(".")
    }
    assert got == {**modes, "open.txt": 0o644}
    assert (ws.root / "artifacts/scripts/alice/group.txt").stat().st_mode & 0o777 == 0o640


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
