"""The collaborative workspace under load: posts per second and the time to list 1,000 messages.

    uv run python bench/workspace.py [--backend file|sftp|both] [--processes 8] [--per-process 50]

For each backend: a fresh workspace; P processes post N messages each at once (no locks; the figure is
P*N over the time from the first post's start to the last post's end); then messages are added up to
1,000 and `board list` is timed — in-process (`list_messages`) and as the real `gsm8k board list`
command (interpreter start, connection and all). sftp:// runs against a real OpenSSH server on loopback
(tests/sshd.py, Debian's openssh-server). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(url: str, options: dict, env: dict, processes: int, per_process: int, listed: int) -> dict:
    from gsm8k_pipeline.workspace.board import list_messages, post
    from gsm8k_pipeline.workspace.layout import init
    from gsm8k_pipeline.workspace.store import open_store
    from support.stress import post_storm

    with open_store(url, **options) as store:
        init(store)
    storm = post_storm(url, processes=processes, per_process=per_process, options=options)
    if storm.errors:
        raise SystemExit(f"post storm failed: {storm.errors[:3]}")
    with open_store(url, **options) as store:
        for i in range(max(0, listed - storm.posts)):
            post(store, "bench", "status-update", f"filler {i}", "filler\n")
        started = time.perf_counter()
        listing = list_messages(store)
        in_process = time.perf_counter() - started
    assert len(listing.messages) == max(listed, storm.posts) and not listing.warnings
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "gsm8k_pipeline.cli", "board", "list", "--workspace", url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    command = time.perf_counter() - started
    assert len(proc.stdout.splitlines()) == len(listing.messages), proc.stderr
    return {
        "concurrent_posts": storm.posts,
        "processes": processes,
        "storm_seconds": round(storm.seconds, 2),
        "posts_per_second": round(storm.posts_per_second, 1),
        "messages_listed": len(listing.messages),
        "list_seconds_in_process": round(in_process, 2),
        "list_seconds_command": round(command, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("file", "sftp", "both"), default="both")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--per-process", type=int, default=50)
    parser.add_argument("--list", type=int, default=1000, help="messages on the board when listing")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="gsm8k-ws-bench-") as tmp:
        tmp = Path(tmp)
        counts = (args.processes, args.per_process, args.list)
        if args.backend in ("file", "both"):
            env = {k: v for k, v in os.environ.items() if not k.startswith("GSM8K_")}
            results["file"] = measure(str(tmp / "file-ws"), {}, env, *counts)
        if args.backend in ("sftp", "both"):
            from sshd import Sshd

            with Sshd(tmp / "sshd") as server:
                results["sftp"] = measure(
                    server.url(tmp / "sftp-ws"), server.storage_options, server.client_env(), *counts
                )
    print(json.dumps({"cpus": os.cpu_count(), **results}, indent=2))


if __name__ == "__main__":
    main()
