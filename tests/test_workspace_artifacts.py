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
from pathlib import Path

import pytest

from conftest import REPO
from gsm8k_pipeline.workspace import AlreadyExists, WorkspaceError
from gsm8k_pipeline.workspace.artifacts import put
from gsm8k_pipeline.workspace.board import post
from gsm8k_pipeline.workspace.store import open_store
from support.workspace import (
    gsm8k,
    snapshot,
    tree,
)


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
    code, out, err = gsm8k(capsys, "artifacts", "get", "data/bob/plan-copy.md", tmp_path)
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
    assert len([line for line in out.splitlines() if line.startswith("checkpoints/alice/big.v2/")]) == 400
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
    for link in ("link", "dirlink", "dirlink/"):
        code, _, err = gsm8k(capsys, "artifacts", "put", *common, f"{tmp_path}/{link}", "data/")
        assert code == 2 and "a symlink (to " in err and "--follow-symlinks" in err, err
    assert snapshot(ws.root) == before
    code, out, err = gsm8k(capsys, "artifacts", "put", *common, tmp_path / "link", "data/", "--follow-symlinks")
    assert code == 0 and out.strip() == "artifacts/data/alice/secret", err
    published = ws.root / "artifacts/data/alice/secret"
    assert published.read_text() == "s3cret\n" and published.stat().st_mode & 0o777 == 0o640
    code, out, err = gsm8k(capsys, "artifacts", "put", *common, tmp_path / "dirlink", "data/", "--follow-symlinks")
    assert code == 0 and out.splitlines()[0] == "artifacts/data/alice/folder", err


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
