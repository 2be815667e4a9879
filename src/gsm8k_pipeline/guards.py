"""One run per output, and no run outliving the engine that started it (Linux).

- `exclusive(output)`: an exclusive lock on a stage's output folder or file, held for the whole run. A
  second run on the same output (the other engine, a rerun while an orphan still trains) fails at once
  naming the output and the holder's pid, before it touches anything: trainers keep checkpoints outside
  their declared outputs so a killed stage resumes, and two trainers rotating one checkpoints/ folder
  crash or corrupt each other. The lock file sits beside the output (`.<name>.gsm8k.lock`), where neither
  engine deletes or tracks it, and is removed on release; one left by a killed holder is no longer locked
  (the kernel drops flock locks with their process), so it blocks nothing.
- `watch_engine()`: when `dvc` or `snakemake` is among this process's ancestors, a daemon thread ends the
  process as soon as that engine exits. Engines start stages through a shell, so a `kill -9` of the engine
  would otherwise leave the stage running, writing outputs after the engine recorded (or, rerun, started
  over on) them. A run started by hand has no engine ancestor and is never stopped; nor is one under
  `nohup dvc repro &` whose terminal closed, since the engine itself lives on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from .errors import PipelineError

ENGINES = ("dvc", "snakemake")
ORPHANED_EXIT = 3  # the exit status of a stage stopped because its engine died


def lock_file(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.parent / f".{output.name}.gsm8k.lock"


@contextlib.contextmanager
def exclusive(output: str | os.PathLike) -> Iterator[None]:
    """Hold `output`'s lock for the body; PipelineError at once if another process holds it."""
    path = lock_file(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise PipelineError(f"{output}: another run (pid {holder}) is writing it; wait for it to finish "
                                f"or stop it first (lock {path})") from None
        # The previous holder removes the file on release: if it did so between our open and our lock, we
        # hold a file nobody else will see, so take the one now at the path instead.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: no other process can be holding this file
        os.close(fd)


def _engine(argv: list[str]) -> str | None:
    """'dvc' or 'snakemake' if the command line runs one (as a script, `python SCRIPT` or `python -m`)."""
    names = [os.path.basename(a) for a in argv[:2]]
    if len(argv) > 2 and argv[1] == "-m":
        names.append(argv[2])
    return next((n for n in names if n in ENGINES), None)


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name: [state, ppid, ...]; field 19 is the start time."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def engine_ancestor() -> tuple[int, str] | None:
    """(pid, name) of the nearest `dvc` or `snakemake` process among this process's ancestors."""
    pid = os.getppid()
    try:
        while pid > 1:
            argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
            if name := _engine(argv):
                return pid, name
            pid = int(_stat(pid)[1])
    except FileNotFoundError:  # no /proc (not Linux), or an ancestor exited while we looked: none to watch
        return None
    return None


def _wait_for_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)  # readable once the process has exited; no polling, no pid reuse
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # Linux before 5.3: poll its start time (a reused pid starts later)
        started = None
        while True:
            try:
                fields = _stat(pid)
            except FileNotFoundError:
                return
            started = started or fields[19]
            if fields[19] != started or fields[0] in ("Z", "X"):
                return
            time.sleep(1)
    select.select([fd], [], [])


def _stop_when_gone(pid: int, name: str) -> None:
    _wait_for_exit(pid)
    try:
        print(f"gsm8k: {name} (pid {pid}), which started this stage, exited: stopping the stage too, so no "
              "later run finds it still writing", file=sys.stderr, flush=True)
    finally:  # stderr may be a pipe the engine no longer reads: stop whatever printing does
        os._exit(ORPHANED_EXIT)


def watch_engine() -> tuple[int, str] | None:
    """Start the watchdog if an engine started this process; returns the engine watched, if any."""
    found = engine_ancestor()
    if found is not None:
        threading.Thread(target=_stop_when_gone, args=found, name="engine-watchdog", daemon=True).start()
    return found
