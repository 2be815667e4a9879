"""A pytest plugin: the CPU seconds of each test, to see where a CPU-bound suite's time goes.

    PYTEST_ADDOPTS="-p support.cpu_seconds" bash tests/run.sh      # then: sort -t$'\t' -k2 -rn <dir>/*.tsv

Per test, user + system time of the pytest worker and of every child it waited for (engines, stages, `gsm8k`
commands), and the wall time, appended as `nodeid<TAB>cpu<TAB>wall` to <dir>/<worker>.tsv, where <dir> is
$GSM8K_CPU_SECONDS (default /tmp/gsm8k-cpu-seconds). Work done outside the worker's children is not counted:
SLURM jobs (slurmd's children), DVC's queue workers, sshd.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

FOLDER = Path(os.environ.get("GSM8K_CPU_SECONDS", "/tmp/gsm8k-cpu-seconds"))


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu, wall = _cpu(), time.monotonic()
    yield
    FOLDER.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(FOLDER / f"{worker}.tsv", "a") as f:
        f.write(f"{item.nodeid}\t{_cpu() - cpu:.1f}\t{time.monotonic() - wall:.1f}\n")
