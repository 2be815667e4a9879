"""One run per output (Linux); the other guard, no stage outliving its engine, is the dispatcher's (cli/).

`exclusive(output)`: an exclusive lock on a stage's output folder or file, held for the whole run. A second
run on the same output (the other engine, a rerun while an orphan still trains) fails at once naming the
output and the holder's pid, before it touches anything: trainers keep checkpoints outside their declared
outputs so a killed stage resumes, and two trainers rotating one checkpoints/ folder crash or corrupt each
other. The lock file sits beside the output (`.<name>.gsm8k.lock`), where neither engine deletes or tracks
it, and is removed on release; one left by a killed holder is no longer locked (the kernel drops flock
locks with their process), so it blocks nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from . import PipelineError


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
            raise PipelineError(
                f"{output}: another run (pid {holder}) is writing it; wait for it to finish "
                f"or stop it first (lock {path})"
            ) from None
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
