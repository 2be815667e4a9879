"""Wall-clock figures, kept apart from results.

A stage's results are the same bytes whichever engine, machine or load produced them; how long it took is
not. So every figure read off a clock goes to a timings file beside the stage's outputs (its name ends in
TIMINGS, e.g. metrics/eval/<model>/timings.json) and never into a result file: `split` takes them out of a
record by name (WALL_CLOCK: what TRL logs and what the stages time), and tests that compare two runs
compare every output but the timings files (`is_timings_file`). A new timing figure needs only a name
this pattern knows, e.g. `<what>_seconds`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TIMINGS = "timings.json"
# seconds, greedy_seconds, problems_per_second, step_time, train_runtime, train_samples_per_second, and
# `timings` (a block of them: generation's per-pass figures, warm-up apart from steady state)
WALL_CLOCK = re.compile(r"(?:^|[_/])(?:seconds|runtime|time|timings)$|_per_second$")


def is_wall_clock(key: str) -> bool:
    return bool(WALL_CLOCK.search(key))


def is_timings_file(path: str | os.PathLike) -> bool:
    return Path(path).name.endswith(TIMINGS)


def split(record: dict) -> tuple[dict, dict]:
    """(record without its wall-clock figures, those figures at the same nested keys); nested dicts too."""
    kept, clock = {}, {}
    for key, value in record.items():
        if is_wall_clock(key):
            clock[key] = value
        elif isinstance(value, dict):
            kept[key], inner = split(value)
            if inner:
                clock[key] = inner
        else:
            kept[key] = value
    return kept, clock


def process_seconds() -> float | None:
    """Seconds since this process started, interpreter start-up and imports included (Linux; else None)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 2)


_startup: float | None = None  # set by work_begins()


def work_begins() -> None:
    """Marks the end of this process's start-up (interpreter, imports, model load, trainer set-up): its
    timings file then says how much of `process_seconds` was start-up (`startup_seconds`), which a DAG of
    many short jobs pays once per job."""
    global _startup
    _startup = process_seconds()


def write(path: str | os.PathLike, figures: dict) -> None:
    """The stage's timings file: `figures` plus the process's wall time so far (`process_seconds`) and, where
    the stage marked it (work_begins), its start-up (`startup_seconds`)."""
    from .fileio import atomic_write_json

    startup = {"startup_seconds": _startup} if _startup is not None else {}
    atomic_write_json(path, {**figures, **startup, "process_seconds": process_seconds()})
