"""The workspace's storage layer (workspace/store.py) on a local folder and on sftp:// against a real OpenSSH
server on loopback (tests/sshd.py): what the create-exclusive primitive relies on, writes confined to the
workspace, unreachable or unsupported backends and unknown host keys refused in one line, URLs redacted."""

from __future__ import annotations

import pytest

from gsm8k_pipeline.workspace import AlreadyExists, redact_url
from gsm8k_pipeline.workspace.layout import init
from gsm8k_pipeline.workspace.store import open_store
from support.workspace import (
    SECRET,
    gsm8k,
    write_metrics,
)


def test_redaction():
    assert redact_url(f"sftp://bob:{SECRET}@host:22/x") == "sftp://bob:***@host:22/x"
    assert redact_url("sftp://bob@host/x") == "sftp://bob@host/x"
    assert redact_url("/plain/path") == "/plain/path"


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
