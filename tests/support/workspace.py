"""What the workspace tests (tests/test_workspace_*.py) share: a backend under test (a local folder, or
sftp:// against the real sshd of tests/sshd.py), the `gsm8k` command in-process and as a subprocess,
snapshots of a workspace on disk, and results as the pipeline writes them. The fixtures built on these
(`sshd`, `backend`, `ws`) are in tests/conftest.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gsm8k_pipeline.stats import wilson_interval
from gsm8k_pipeline.workspace.store import open_store

from .checkout import REPO

SECRET = "s3cr3t-Pa55word"


@dataclass
class Backend:
    name: str
    root: Path  # where the workspace lives on disk (for sftp: the server side, on this machine)
    url: str
    options: dict
    env: dict = field(repr=False)  # for `gsm8k` subprocesses
    server: object | None = None  # the sshd.Sshd serving it (sftp)

    def store(self):
        return open_store(self.url, **self.options)


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GSM8K_WORKSPACE", "GSM8K_AGENT_ID", "SSH_AUTH_SOCK")}
    env.update(extra)
    return env


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


def tree(root: Path, n: int) -> Path:
    """A local folder of n small files, f00000.bin ..."""
    root.mkdir(parents=True)
    for k in range(n):
        (root / f"f{k:05d}.bin").write_bytes(b"%05d" % k * 20)
    return root


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
