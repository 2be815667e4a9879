"""Artifacts (workspace/artifacts.py) on a local folder and on sftp://: nothing is ever overwritten, racing
puts, directory uploads complete or invisible, manifests checked on get, symlinks and modes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import REPO
from gsm8k_pipeline.workspace import AlreadyExists, WorkspaceError
from gsm8k_pipeline.workspace.artifacts import put
from gsm8k_pipeline.workspace.board import post
from gsm8k_pipeline.workspace.store import open_store
from support.workspace import gsm8k, snapshot, table_rows, tree, write_metrics


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
    assert "scripts/alice/train.v3.py" in listed and "checkpoints/alice/ckpt.v2/" in listed  # one row per artifact
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


def test_artifact_options(ws, tmp_path, capsys, monkeypatch):
    """The flags the walk-through doesn't use: KIND/NEWNAME, list KIND --json, one-file get."""
    monkeypatch.setenv("GSM8K_WORKSPACE", ws.url)
    plan = tmp_path / "plan.md"
    plan.write_text("# Plan\n\n- step 1\n")
    code, out, err = gsm8k(capsys, "artifacts", "put", "--agent-id", "bob", plan, "data/plan-copy.md")
    assert code == 0 and out.strip() == "artifacts/data/bob/plan-copy.md", err
    code, out, _ = gsm8k(capsys, "artifacts", "list", "data", "--json")
    assert [e["path"] for e in json.loads(out)] == ["data/bob/plan-copy.md"]
    code, out, _ = gsm8k(capsys, "artifacts", "list", "scripts")
    assert out == ""
    code, out, err = gsm8k(capsys, "artifacts", "get", "data/bob/plan-copy.md", "--out-dir", tmp_path)
    assert code == 0 and (tmp_path / "plan-copy.md").read_text() == plan.read_text(), err


def test_an_interrupted_directory_upload_stays_invisible(ws, tmp_path, capsys):
    """`artifacts put` killed (SIGKILL) mid-upload: the half-uploaded folder is neither listed nor
    downloadable; the --new-version retry lands complete."""
    src = tree(tmp_path / "big", 400)
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
    [row] = [line.split("\t") for line in out.splitlines() if line.startswith("checkpoints/alice/big.v2/")]
    assert row[1:3] == ["40.0 kB", "400 files"], row
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/big.v2", tmp_path / "got")
    assert code == 0, err
    assert snapshot(tmp_path / "got") == snapshot(src)


def test_get_checks_files_against_the_manifest(ws, tmp_path, capsys):
    src = tree(tmp_path / "ck", 3)
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
        src = tree(Path(tmp) / "ck", 5)
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
    folder = tree(tmp_path / "folder", 2)
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


# --- one row per artifact, rm, a second get, progress ------------------------------------------------------


def test_list_shows_one_row_per_artifact_with_size_and_upload_time(ws, tmp_path, capsys):
    common = ["--workspace", ws.url]
    one = tmp_path / "train.py"
    one.write_text("12345")
    ck = tree(tmp_path / "ck", 3)  # 3 x 100 bytes
    (ck / "sub").mkdir()
    (ck / "sub" / "cfg.json").write_text("{}")
    before = datetime.now(UTC).replace(microsecond=0)
    for agent, path, kind in (("alice", one, "scripts/"), ("alice", ck, "checkpoints/"), ("bob", one, "scripts/")):
        assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", agent, path, kind)[0] == 0
    after = datetime.now(UTC)
    code, out, err = gsm8k(capsys, "artifacts", "list", *common)
    assert code == 0 and err == "", err
    rows = [line.split("\t") for line in out.splitlines()]
    assert [r[:3] for r in rows] == [
        ["scripts/alice/train.py", "5 B", "1 file"],
        ["scripts/bob/train.py", "5 B", "1 file"],
        ["checkpoints/alice/ck/", "302 B", "4 files"],
    ]
    for r in rows:
        assert before <= datetime.strptime(r[3], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= after, r
    code, out, _ = gsm8k(capsys, "artifacts", "list", *common, "checkpoints", "--json")
    [entry] = json.loads(out)
    assert entry == {
        "path": "checkpoints/alice/ck",
        "kind": "checkpoints",
        "agent_id": "alice",
        "size": 302,
        "files": 4,
        "uploaded_at": rows[2][3],
        "directory": True,
    }


def test_rm_removes_ones_own_artifact_never_another_agents(ws, tmp_path, capsys):
    common = ["--workspace", ws.url]
    script = tmp_path / "train.py"
    script.write_text("x\n")
    ck = tree(tmp_path / "ck", 3)
    for agent in ("alice", "bob"):
        assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", agent, script, "scripts/")[0] == 0
    assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", ck, "checkpoints/")[0] == 0
    before = snapshot(ws.root)
    # another agent's, a part of an artifact, or a bad name: refused in one line, nothing removed
    for target, expected in (
        ("scripts/alice/train.py", "alice's artifact, not yours (bob)"),
        ("artifacts/checkpoints/alice/ck", "alice's artifact, not yours (bob)"),
        ("checkpoints/bob/ck/f00000.bin", "a whole artifact"),
        ("scripts/../alice/train.py", "a whole artifact"),
        ("scripts/bob/..", "invalid artifact name"),
        ("models/x", "a whole artifact"),
        ("scripts/nothing.py", "no such artifact"),
    ):
        code, out, err = gsm8k(capsys, "artifacts", "rm", *common, "--agent-id", "bob", target)
        assert code == 2 and expected in err and err.count("\n") == 1 and out == "", (target, err)
    code, _, err = gsm8k(capsys, "artifacts", "rm", *common, "--agent-id", "../x", "scripts/train.py")
    assert code == 2 and "agent id" in err
    assert snapshot(ws.root) == before
    # one's own: a file (KIND/NAME) and a whole directory upload (KIND/AGENT/NAME, as list shows it)
    code, out, err = gsm8k(capsys, "artifacts", "rm", *common, "--agent-id", "alice", "scripts/train.py")
    assert code == 0 and out == "removed artifacts/scripts/alice/train.py\n", err
    code, out, err = gsm8k(capsys, "artifacts", "rm", *common, "--agent-id", "alice", "checkpoints/alice/ck/")
    assert code == 0 and out == "removed artifacts/checkpoints/alice/ck\n", err
    assert os.listdir(ws.root / "artifacts/checkpoints/alice") == []  # nothing left, hidden or not
    assert os.listdir(ws.root / "artifacts/scripts/alice") == []
    assert (ws.root / "artifacts/scripts/bob/train.py").read_text() == "x\n"
    code, out, _ = gsm8k(capsys, "artifacts", "list", *common)
    assert [line.split("\t")[0] for line in out.splitlines()] == ["scripts/bob/train.py"]
    # the name is free again; an interrupted upload (no manifest) can be removed too
    assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", ck, "checkpoints/")[0] == 0
    (ws.root / "artifacts/checkpoints/alice/ck/.manifest.json").unlink()
    code, _, err = gsm8k(capsys, "artifacts", "rm", *common, "--agent-id", "alice", "checkpoints/ck")
    assert code == 0 and not (ws.root / "artifacts/checkpoints/alice/ck").exists(), err
    # removing a published result takes it off LEADERBOARD.md
    metrics = write_metrics(tmp_path / "all.json", {"grpo_8": 0.5})
    code, out, err = gsm8k(capsys, "publish", *common, "--agent-id", "alice", "--metrics", metrics)
    assert code == 0 and len(table_rows((ws.root / "LEADERBOARD.md").read_text())) == 1, err
    published = out.split()[1]
    code, _, err = gsm8k(capsys, "artifacts", "rm", *common, "--agent-id", "bob", published)
    assert code == 2 and "not yours" in err
    code, _, err = gsm8k(capsys, "artifacts", "rm", *common, "--agent-id", "alice", published)
    assert code == 0, err
    assert table_rows((ws.root / "LEADERBOARD.md").read_text()) == []


def test_a_second_get_is_refused_or_replaces_never_nests(ws, tmp_path, capsys):
    common = ["--workspace", ws.url]
    src = tree(tmp_path / "ck", 3)
    note = tmp_path / "note.md"
    note.write_text("v1\n")
    assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", src, "checkpoints/")[0] == 0
    assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "alice", note, "data/")[0] == 0
    dest = tmp_path / "got"
    assert gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ck", dest)[0] == 0
    first = snapshot(dest)
    assert first == snapshot(src)
    # a second get to the same place: refused in one line, nothing nested inside the first copy
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ck", dest)
    assert code == 2 and "already exists locally" in err and "--replace" in err and err.count("\n") == 1
    assert snapshot(dest) == first and not (dest / "ck").exists()
    # --replace swaps in a whole, checked copy: local edits and strays are gone
    (dest / "f00001.bin").write_bytes(b"edited")
    (dest / "stray.txt").write_text("mine")
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ck", dest, "--replace")
    assert code == 0 and snapshot(dest) == first, err
    # a failing --replace (a file changed after upload) leaves the old copy as it was
    (dest / "stray.txt").write_text("mine")
    kept = snapshot(dest)
    remote = ws.root / "artifacts/checkpoints/alice/ck/f00002.bin"
    good = remote.read_bytes()
    remote.write_bytes(b"Y" * len(good))
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "checkpoints/alice/ck", dest, "--replace")
    assert code == 2 and "differs from its manifest" in err
    assert snapshot(dest) == kept
    remote.write_bytes(good)
    # --output-dir DIR (--out-dir, its earlier spelling, too): lands as DIR/NAME, DIR made if missing; twice is refused too
    for _ in range(2):
        code, out, err = gsm8k(
            capsys, "artifacts", "get", *common, "checkpoints/alice/ck", "--output-dir", tmp_path / "d"
        )
    assert code == 2 and "already exists locally" in err
    assert snapshot(tmp_path / "d") == {"ck": "dir", **{f"ck/{k}": v for k, v in first.items()}}
    # a single file: into a folder only with --out-dir; --replace replaces it
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "data/alice/note.md", tmp_path / "d")
    assert code == 2 and "already exists locally" in err
    code, out, err = gsm8k(capsys, "artifacts", "get", *common, "data/alice/note.md", "--output-dir", tmp_path / "d")
    assert code == 0 and (tmp_path / "d/note.md").read_text() == "v1\n", err
    (tmp_path / "d/note.md").write_text("local edit\n")
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "data/alice/note.md", tmp_path / "d/note.md")
    assert code == 2 and (tmp_path / "d/note.md").read_text() == "local edit\n"
    code, _, err = gsm8k(
        capsys, "artifacts", "get", *common, "data/alice/note.md", "--output-dir", tmp_path / "d", "--replace"
    )
    assert code == 0 and (tmp_path / "d/note.md").read_text() == "v1\n", err
    code, _, err = gsm8k(capsys, "artifacts", "get", *common, "data/alice/note.md", tmp_path / "x", "--output-dir", "y")
    assert code == 2 and "not both" in err
    leftovers = [p for p in tmp_path.rglob(".*") if ws.root not in p.parents]
    assert leftovers == [], leftovers  # no staging or swapped-out copies left behind


def test_large_puts_report_progress_on_stderr(ws, tmp_path, capsys, monkeypatch):
    import io

    from gsm8k_pipeline.workspace import artifacts

    common = ["--workspace", ws.url, "--agent-id", "alice"]
    monkeypatch.setattr(artifacts, "PROGRESS_MIN", 10_000)
    small = tree(tmp_path / "small", 3)  # 300 bytes: below the threshold, silent
    code, _, err = gsm8k(capsys, "artifacts", "put", *common, small, "data/")
    assert code == 0 and err == ""
    big = tree(tmp_path / "big", 200)  # 20 kB, 200 files
    code, _, err = gsm8k(capsys, "artifacts", "put", *common, big, "data/")
    assert code == 0, err
    lines = err.splitlines()  # not a terminal: one line per tenth
    assert len(lines) == 10 and lines[-1] == "put data/big: 20.0 kB of 20.0 kB (100 %)", lines
    assert lines[0] == "put data/big: 2.0 kB of 20.0 kB (10 %)"
    one = tmp_path / "one.bin"
    one.write_bytes(b"\0" * 12_345)
    code, _, err = gsm8k(capsys, "artifacts", "put", *common, one, "data/")
    assert code == 0 and err.splitlines() == ["put data/one.bin: 12.3 kB of 12.3 kB (100 %)"], err

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    report = artifacts.Progress("data/x", 3 * 2**20, stream)
    for _ in range(3):
        report(2**20)
    report.close()
    text = stream.getvalue()
    assert text.startswith("\rput data/x: 1.0 MB of 3.1 MB (33 %)") and text.endswith("(100 %)\n"), repr(text)
    assert text.count("\n") == 1  # one line, rewritten in place
