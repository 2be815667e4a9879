"""`gsm8k artifacts sync` (workspace/sync.py) on a local folder and on sftp:// against a real OpenSSH server:
up and down, only what changed (by size and SHA-256), --dry-run, --include/--exclude, nothing overwritten
in the workspace, nothing half-written looking finished on either side, bad input refused in one line."""

from __future__ import annotations

import os

from support.workspace import gsm8k, snapshot, tree


def _inodes(root) -> dict:
    """Each local file's (inode, mtime): unchanged means not written again."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _local(tmp_path):
    loc = tmp_path / "loc"
    (loc / "ck" / "sub").mkdir(parents=True)
    (loc / "train.py").write_text("print(1)\n")
    (loc / "notes.txt").write_text("notes\n")
    (loc / "ck" / "w.bin").write_bytes(b"\x01" * 1000)
    (loc / "ck" / "sub" / "cfg.json").write_text("{}")
    (loc / ".cache").write_text("hidden")
    (loc / "link").symlink_to(loc / "train.py")
    return loc


def test_sync_up_sends_only_what_changed(ws, tmp_path, capsys):
    loc = _local(tmp_path)
    common = ["--workspace", ws.url, "--agent-id", "alice"]
    mine = ws.root / "artifacts/scripts/alice"
    before = snapshot(ws.root)
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == [
        f"+ {loc}/ck -> scripts/alice/ck (new, 1.0 kB)",
        f"+ {loc}/notes.txt -> scripts/alice/notes.txt (new, 6 B)",
        f"+ {loc}/train.py -> scripts/alice/train.py (new, 9 B)",
        "3 new, 0 changed, 0 unchanged (dry run: nothing transferred)",
    ]
    assert snapshot(ws.root) == before
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/")
    assert code == 0 and out.splitlines()[-1] == "3 new, 0 changed, 0 unchanged", err
    assert ".cache: hidden, not synced" in err and "link: symlink or special file, not synced" in err
    assert (mine / "ck/sub/cfg.json").read_text() == "{}" and (mine / "ck/.manifest.json").is_file()
    assert (mine / "train.py").read_text() == "print(1)\n"
    # again: nothing to send, nothing written
    synced = snapshot(ws.root)
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/alice")
    assert code == 0 and out == "0 new, 0 changed, 3 unchanged\n", err
    assert snapshot(ws.root) == synced
    # same sizes, other bytes: the hashes catch it; a change becomes the next version, nothing overwritten
    (loc / "train.py").write_text("print(2)\n")
    (loc / "ck" / "w.bin").write_bytes(b"\x02" * 1000)
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/")
    assert code == 0, err
    assert out.splitlines() == [
        f"~ {loc}/ck -> scripts/alice/ck.v2 (changed, 1.0 kB)",
        f"~ {loc}/train.py -> scripts/alice/train.v2.py (changed, 9 B)",
        "0 new, 2 changed, 1 unchanged",
    ]
    assert {k: v for k, v in snapshot(ws.root).items() if k in synced} == synced  # every earlier file intact
    assert (mine / "ck.v2/w.bin").read_bytes() == b"\x02" * 1000 and (mine / "train.v2.py").read_text() == "print(2)\n"
    assert gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/")[1] == "0 new, 0 changed, 3 unchanged\n"
    # an interrupted latest version (no manifest) is never taken for the local folder: the next one is sent
    (mine / "ck.v2/.manifest.json").unlink()
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/")
    assert f"~ {loc}/ck -> scripts/alice/ck.v3 (changed, 1.0 kB)" in out and "ck.v2: incomplete upload" in err
    # --include / --exclude: globs on the path under the local folder
    (loc / "new.py").write_text("x")
    (loc / "new.txt").write_text("x")
    (loc / "ck" / "extra.json").write_text("[]")
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/", "--include", "*.py", "--dry-run")
    assert out.splitlines() == [
        f"+ {loc}/new.py -> scripts/alice/new.py (new, 1 B)",
        "1 new, 0 changed, 1 unchanged (dry run: nothing transferred)",
    ]
    code, out, err = gsm8k(
        capsys, "artifacts", "sync", *common, loc, "scripts/", "--exclude", "*.txt", "--exclude", "ck/*.json"
    )
    assert code == 0 and out.splitlines()[-1] == "1 new, 0 changed, 2 unchanged", out  # ck: w.bin unchanged
    assert not (mine / "new.txt").exists()
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, loc, "scripts/", "--include", "ck/*")
    assert out.splitlines() == [f"~ {loc}/ck -> scripts/alice/ck.v4 (changed, 1.0 kB)", "0 new, 1 changed, 0 unchanged"]
    assert sorted(p.name for p in (mine / "ck.v4").iterdir()) == [".manifest.json", "extra.json", "sub", "w.bin"]


def test_sync_refuses_bad_input_in_one_line(ws, tmp_path, capsys, monkeypatch):
    loc = _local(tmp_path)
    (tmp_path / "data").mkdir()
    common = ["--workspace", ws.url, "--agent-id", "alice"]
    before = snapshot(ws.root)
    for argv, expected in (
        ([loc, "scripts/bob"], "bob's folder, not yours (alice)"),
        ([loc, "scripts/alice/x"], "sync up to KIND/ or KIND/alice"),
        ([loc, "models/"], "neither"),
        ([tmp_path / "nothing", "scripts/"], "not a local folder"),
        ([loc / "train.py", "scripts/"], "not a local folder"),
        (["data", "data/"], "both"),
        ([loc, tmp_path / "x"], "neither"),
        ([loc, "scripts/", "--include", ""], "invalid pattern"),
        (["scripts/alice/a/b", tmp_path / "x"], "sync down from KIND/AGENT or KIND/AGENT/NAME"),
        (["scripts/Bob", tmp_path / "x"], "sync down from KIND/AGENT or KIND/AGENT/NAME"),
        (["scripts/alice/nothing", tmp_path / "x"], "no such artifact"),
        (["scripts/alice/..", tmp_path / "x"], "invalid artifact name"),
    ):
        code, out, err = gsm8k(capsys, "artifacts", "sync", *common, *argv)
        assert code == 2 and expected in err and err.count("\n") == 1 and out == "", (argv, err)
    code, _, err = gsm8k(capsys, "artifacts", "sync", "--workspace", ws.url, "--agent-id", "A", loc, "scripts/")
    assert code == 2 and "agent id" in err
    assert snapshot(ws.root) == before and not (tmp_path / "x").exists()
    # ./data is the local folder called like a KIND
    monkeypatch.chdir(tmp_path)
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "./data", "data/")
    assert code == 0 and out == "0 new, 0 changed, 0 unchanged\n", err


def test_sync_down_fetches_only_what_changed(ws, tmp_path, capsys):
    loc = _local(tmp_path)
    common = ["--workspace", ws.url]
    assert gsm8k(capsys, "artifacts", "sync", *common, "--agent-id", "alice", loc, "scripts/")[0] == 0
    mirror = tmp_path / "mirror"
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "scripts/alice", mirror, "--dry-run")
    assert code == 0 and out.splitlines() == [
        f"+ scripts/alice/ck/sub/cfg.json -> {mirror}/ck/sub/cfg.json (new, 2 B)",
        f"+ scripts/alice/ck/w.bin -> {mirror}/ck/w.bin (new, 1.0 kB)",
        f"+ scripts/alice/notes.txt -> {mirror}/notes.txt (new, 6 B)",
        f"+ scripts/alice/train.py -> {mirror}/train.py (new, 9 B)",
        "4 new, 0 changed, 0 unchanged (dry run: nothing transferred)",
    ], err
    assert not mirror.exists()
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "scripts/alice", mirror)
    assert code == 0 and out.splitlines()[-1] == "4 new, 0 changed, 0 unchanged", err
    expected = {k: v for k, v in snapshot(loc).items() if k not in (".cache", "link")}
    assert snapshot(mirror) == expected
    # again: nothing downloaded, not a file rewritten
    files = _inodes(mirror)
    assert gsm8k(capsys, "artifacts", "sync", *common, "scripts/alice", mirror)[1] == "0 new, 0 changed, 4 unchanged\n"
    assert _inodes(mirror) == files
    # a local edit of the same size (single-file artifact and a file of a directory upload) is replaced
    # whole; a local file the workspace doesn't have stays (sync never deletes)
    (mirror / "train.py").write_text("print(9)\n")
    (mirror / "ck" / "w.bin").write_bytes(b"\x09" * 1000)
    (mirror / "mine.txt").write_text("local only")
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "scripts/alice", mirror)
    assert code == 0 and out.splitlines() == [
        f"~ scripts/alice/ck/w.bin -> {mirror}/ck/w.bin (changed, 1.0 kB)",
        f"~ scripts/alice/train.py -> {mirror}/train.py (changed, 9 B)",
        "0 new, 2 changed, 2 unchanged",
    ], err
    assert snapshot(mirror) == {**expected, "mine.txt": b"local only"}
    assert _inodes(mirror)[mirror / "notes.txt"] == files[mirror / "notes.txt"]
    # --include / --exclude on the local path; one artifact syncs its own files into the folder
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "scripts/alice", tmp_path / "py", "--include", "*.py")
    assert code == 0 and snapshot(tmp_path / "py") == {"train.py": b"print(1)\n"}, err
    code, out, err = gsm8k(
        capsys, "artifacts", "sync", *common, "scripts/alice/ck", tmp_path / "one", "--exclude", "sub/*"
    )
    assert code == 0 and snapshot(tmp_path / "one") == {"w.bin": b"\x01" * 1000}, err
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "scripts/alice/notes.txt", tmp_path / "one")
    assert code == 0 and (tmp_path / "one/notes.txt").read_text() == "notes\n", err
    # a folder here where the workspace has a file: refused before anything is written
    (tmp_path / "clash/train.py").mkdir(parents=True)
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "scripts/alice", tmp_path / "clash")
    assert code == 2 and "not a regular file here" in err and err.count("\n") == 1
    assert snapshot(tmp_path / "clash") == {"train.py": "dir"}
    assert not [p for p in tmp_path.rglob(".*") if ws.root not in p.parents and p.name != ".cache"]


def test_sync_down_never_shows_a_half_written_file(ws, tmp_path, capsys):
    """A file changed in the workspace after upload fails its check: it never takes its local name (and a
    local copy it would have replaced stays); incomplete uploads are skipped with a warning."""
    common = ["--workspace", ws.url]
    src = tree(tmp_path / "ck", 3)
    assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "bob", src, "checkpoints/")[0] == 0
    assert gsm8k(capsys, "artifacts", "put", *common, "--agent-id", "bob", src, "checkpoints/half")[0] == 0
    (ws.root / "artifacts/checkpoints/bob/half/.manifest.json").unlink()
    (ws.root / "artifacts/checkpoints/bob/odd name.bin").write_bytes(b"planted by hand")
    (ws.root / "artifacts/checkpoints/bob/passwd").symlink_to("/etc/passwd")
    mirror = tmp_path / "mirror"
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "checkpoints/bob", mirror)
    assert code == 0 and "checkpoints/bob/half: incomplete upload" in err, err
    assert "'odd name.bin': use letters" in err and "not synced" in err
    assert sorted(os.listdir(mirror)) == ["ck"]
    (mirror / "ck/f00001.bin").write_bytes(b"local copy")
    (ws.root / "artifacts/checkpoints/bob/ck/f00001.bin").write_bytes(b"Z" * 100)
    code, out, err = gsm8k(capsys, "artifacts", "sync", *common, "checkpoints/bob/ck", mirror / "ck")
    assert code == 2 and "f00001.bin: differs from its manifest" in err and err.count("\n") == 1
    assert (mirror / "ck/f00001.bin").read_bytes() == b"local copy"
    assert sorted(os.listdir(mirror / "ck")) == ["f00000.bin", "f00001.bin", "f00002.bin"]  # no temp file
    code, _, err = gsm8k(capsys, "artifacts", "sync", *common, "checkpoints/bob/half", tmp_path / "h")
    assert code == 2 and "incomplete upload" in err and not (tmp_path / "h").exists()


def test_an_unreadable_local_file_stops_sync_before_anything_is_sent(ws):
    """Every local file is read (hashed) while planning, so an unreadable one stops the sync in one line with
    nothing uploaded. As root, sync runs as nobody on a store opened before (root reads a mode-000 file)."""
    import tempfile
    from pathlib import Path

    import pytest

    from gsm8k_pipeline.workspace import WorkspaceError
    from gsm8k_pipeline.workspace.sync import sync_up

    with tempfile.TemporaryDirectory() as tmp, ws.store() as store:
        os.chmod(tmp, 0o755)
        loc = Path(tmp) / "loc"
        tree(loc / "ck", 2)
        (loc / "a.txt").write_text("a")
        (loc / "b.txt").write_text("b")
        before = snapshot(ws.root)
        euid = os.geteuid()
        for unreadable in ("b.txt", "ck/f00001.bin"):
            (loc / unreadable).chmod(0)
            if euid == 0:
                os.seteuid(65534)
            try:
                with pytest.raises(WorkspaceError, match=r"cannot read \(Permission denied\): nothing"):
                    sync_up(store, "alice", loc, "data/")
            finally:
                os.seteuid(euid)
            (loc / unreadable).chmod(0o644)
        assert snapshot(ws.root) == before
