"""Many writers at once, no locks: P processes each posting N messages to one workspace simultaneously.

Used by tests/test_workspace_board.py (exactly P*N messages must come out, all readable) and bench/workspace.py
(posts per second). Each process opens its own connection, all wait at a barrier, then post as fast as
they can; the time is from the first post's start to the last post's end.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass


@dataclass
class StormResult:
    posts: int
    seconds: float
    errors: list[str]

    @property
    def posts_per_second(self) -> float:
        return self.posts / self.seconds if self.seconds > 0 else float("inf")


def _worker(url: str, options: dict, agent: str, n: int, barrier, queue) -> None:
    from gsm8k_pipeline.workspace.board import post
    from gsm8k_pipeline.workspace.store import open_store

    try:
        store = open_store(url, **options)
    except Exception as exc:  # noqa: BLE001 — reported to the parent
        barrier.abort()
        queue.put((agent, None, None, 0, f"{type(exc).__name__}: {exc}"))
        return
    done, error = 0, None
    try:
        barrier.wait(timeout=120)
        start = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
        for i in range(n):
            post(store, agent, "status-update", f"storm {agent} #{i}", f"message {i} of {n} from {agent}\n")
            done += 1
        end = time.perf_counter()
    except Exception as exc:  # noqa: BLE001
        start = end = None
        error = f"{type(exc).__name__}: {exc}"
    finally:
        store.close()
    queue.put((agent, start, end, done, error))


def post_storm(
    url: str,
    processes: int = 8,
    per_process: int = 50,
    options: dict | None = None,
    agent_prefix: str = "storm",
    start_method: str = "fork",
) -> StormResult:
    ctx = mp.get_context(start_method)
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, options or {}, f"{agent_prefix}-{k}", per_process, barrier, queue))
        for k in range(processes)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [f"{agent}: {err}" for agent, _s, _e, _d, err in results if err]
    starts = [s for _a, s, _e, _d, _err in results if s is not None]
    ends = [e for _a, _s, e, _d, _err in results if e is not None]
    seconds = (max(ends) - min(starts)) if starts and ends else float("nan")
    return StormResult(sum(d for *_, d, _err in results), seconds, errors)
