"""Warm starts: `gsm8k <stage>` forked from a process that has already imported torch, transformers, PEFT,
TRL and datasets, instead of a new interpreter importing them all again.

Why: every job of the DAG is a new process, and importing those libraries costs a job about 4 s of CPU on the
2-core machine: most of a test-sized job, and a fifth of the default DAG's process time (docs/benchmarks.md).
A job is still one process per stage with its own outputs, so caching in both engines is as before; only
who starts the process changes. Nothing here changes what a stage computes (the benches compare the default
DAG's outputs byte for byte, tests/test_warm.py a warm job's against a cold one's), so this module is not
among the stages' code dependencies (it is the console script, not the dispatcher: dag.code_deps).

How (Linux, no NVIDIA GPU, not inside a SLURM job; `GSM8K_WARM=0` turns it off):
- The client, `gsm8k <stage>` as an engine runs it, connects to a unix socket named by what imports depend
  on (the interpreter, the installed packages, sys.flags, the environment variables libraries read at import:
  IMPORT_ENV). The first client starts the server there (`python -m gsm8k_pipeline.warm SOCKET`), which imports
  the libraries (PRELOAD) and waits; jobs that meet no server start it and use it.
- The client sends its arguments, working directory, environment and sys.path, with its stdin, stdout and
  stderr. The server forks; the child takes them over, forgets this package's modules (the code on disk runs,
  not what the server imported), and runs the dispatcher as `gsm8k` would.
- The client waits for the child's exit status and exits with it (by the same signal, if one killed the
  child). Signals sent to the client (an engine stopping a job) are passed on to the child; if the client dies,
  the child sees its connection close and kills its process group. The client watches its engine as a cold
  stage does (cli.watch_engine), so no stage outlives its engine.
- The server exits once IDLE_SECONDS pass with no job running, and its socket goes with it.
Anything that fails before the child starts (no server, a server that died) makes the client run the command
itself: a cold start, as before. Not on a GPU machine: CUDA can't be used in a process forked after it was
initialised, and GPU jobs run long enough not to notice 4 s. Not in a SLURM job: SLURM kills a job's
processes when it ends, so a server would never serve a second job.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

# The commands whose stages import torch: only these are worth a fork (the others start in a fraction of a
# second, which a server's first import would only lengthen).
WARM_COMMANDS = {"base-model", "train-sft", "train-grpo", "generate-traces", "evaluate"}
# What every warm command's stage imports anyway, or a training stage's (about 4 s of CPU in all).
PRELOAD = (
    "torch",
    "transformers",
    "transformers.models.llama.modeling_llama",
    "transformers.generation.utils",
    "peft",
    "datasets",
    "trl",
    "trl.trainer.grpo_trainer",
    "trl.trainer.sft_trainer",
    # What torch._dynamo's exit handler imports in every process that loaded it (about 0.3 s), even with nothing
    # compiled to report.
    "tabulate",
)
# Environment variables that libraries read when imported (paths, offline modes, threads, allocators, warnings):
# a job whose values differ gets a server of its own. Every other variable is the job's own, set in the child.
IMPORT_ENV = re.compile(
    r"(PYTHON|HF_|HUGGINGFACE_|TRANSFORMERS_|TORCH|PYTORCH_|CUDA|NVIDIA|OMP_|MKL_|KMP_|OPENBLAS_|TOKENIZERS_|"
    r"DATASETS_|TRL_|PEFT_|ACCELERATE_|LD_|XDG_|LANG$|LC_|TZ$|TMPDIR$|HOME$)"
)
IDLE_SECONDS = 60.0
FAILED_SECONDS = 600  # after a server failed to start, jobs start cold this long before one tries again
OFF = "GSM8K_WARM"  # 0: every command starts cold
_INT = struct.Struct("!q")


def enabled(argv: list[str]) -> bool:
    return (
        bool(argv)
        and argv[0] in WARM_COMMANDS
        and os.environ.get(OFF, "1") != "0"
        and sys.platform == "linux"
        and "SLURM_JOB_ID" not in os.environ
        and not Path("/proc/driver/nvidia").exists()
    )


def socket_path() -> Path:
    """This environment's server socket: one per interpreter, set of installed packages and import-time env."""
    purelib = sysconfig.get_paths()["purelib"]
    key = [sys.executable, sys.prefix, repr(sys.flags), purelib, str(os.stat(purelib).st_mtime_ns)]
    key += [f"{k}={v}" for k, v in sorted(os.environ.items()) if IMPORT_ENV.match(k)]
    folder = Path(tempfile.gettempdir()) / f"gsm8k-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise OSError(f"{folder} is not this user's private folder")
    return folder / f"{hashlib.sha256(chr(0).join(key).encode()).hexdigest()[:20]}.sock"


# --- the client: `gsm8k <command>` ------------------------------------------------------------------------


def main() -> None:
    """The `gsm8k` console script: a warm start where it applies, else the dispatcher as it is."""
    argv = sys.argv[1:]
    if enabled(argv):
        from .cli import watch_engine

        watch_engine()  # the client watches the engine: its death ends the client, and so the child
        status = run_warm(argv)
        if status is not None:
            exit_like(status)
    from .cli import main as dispatch

    dispatch(argv)


def run_warm(argv: list[str]) -> int | None:
    """The child's wait status once it has run `argv`, or None if no server could start it (run it cold)."""
    try:
        conn = _connect(socket_path())
    except OSError:
        return None
    with conn:
        request = json.dumps(
            {"argv": ["gsm8k", *argv], "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path}
        ).encode()
        try:
            socket.send_fds(conn, [_INT.pack(len(request)) + request], [0, 1, 2])
            pid = _read_int(conn)
        except OSError:
            pid = None
        if pid is None:  # the server refused or died before forking: nothing has run
            return None
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, lambda s, _frame: os.kill(pid, s))
        try:
            status = _read_int(conn)
        except OSError:
            status = None
    if status is None:
        print(
            f"gsm8k: the warm-start server died while stage process {pid} ran; its exit status is lost", file=sys.stderr
        )
        return 1 << 8  # exit status 1
    return status


def exit_like(status: int) -> None:
    """Exit as a process with wait status `status` did: with its code, or killed by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.stdout.flush()
    os._exit(os.waitstatus_to_exitcode(status))


def _read_int(conn: socket.socket) -> int | None:
    """The next integer on `conn`, or None if it closed first."""
    data = _recv_exactly(conn, _INT.size)
    return None if data is None else _INT.unpack(data)[0]


def _recv_exactly(conn: socket.socket, size: int, data: bytes = b"") -> bytes | None:
    """`data` completed to `size` bytes from `conn`, or None if it closed first."""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _connect(path: Path) -> socket.socket:
    """A connection to the server at `path`, started first if there is none (one starter at a time)."""
    try:
        return _dial(path)
    except OSError:
        pass
    failed = path.with_suffix(".failed")
    if failed.exists() and time.time() - failed.stat().st_mtime < FAILED_SECONDS:
        raise OSError(f"a warm-start server failed to start here lately ({failed})")
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _dial(path)  # another client started it while we waited for the lock
        except OSError:
            pass
        path.unlink(missing_ok=True)  # a dead server's
        with open(path.with_suffix(".log"), "wb") as log:  # the jobs this server forks, one line each
            launcher = subprocess.run(
                [sys.executable, "-m", __name__, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
            )
        if launcher.returncode != 0:
            failed.touch()  # jobs start cold for a while rather than each pay a failing server's imports
            raise OSError(f"the warm-start server did not start (log: {path.with_suffix('.log')})")
        for _ in range(200):  # it takes its name once its launcher has exited: milliseconds
            try:
                return _dial(path)
            except OSError:
                time.sleep(0.01)
        return _dial(path)


def _dial(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        raise
    return conn


# --- the server: `python -m gsm8k_pipeline.warm SOCKET` ------------------------------------------------------


def serve(path: Path, ready: int) -> None:
    """Listen beside `path`, import PRELOAD, write b"1" to the fd `ready`, take the name `path` once the
    launcher has gone, then fork a child per request until IDLE_SECONDS pass with none running."""
    import importlib

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = path.with_name(path.name + ".new")
    staging.unlink(missing_ok=True)
    listener.bind(str(staging))  # first, so that a path too long fails at once; the name clients dial last
    listener.listen(64)
    for name in PRELOAD:
        importlib.import_module(name)
    launcher = os.getppid()
    os.write(ready, b"1")
    os.close(ready)
    while os.getppid() == launcher:  # until the launcher has exited (see launch)
        time.sleep(0.001)
    os.rename(staging, path)
    mine = os.stat(path).st_ino
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    idle_since = time.monotonic()
    while True:
        if selector.select(timeout=0.05):
            conn, _ = listener.accept()
            pid = _fork(conn, [listener, selector, *children.values()])
            if pid is not None:
                children[pid] = conn
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = children.pop(pid)
            try:
                conn.sendall(_INT.pack(status))
            except OSError:  # the client has gone; the child knew
                pass
            conn.close()
        if children:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_SECONDS:
            break
    try:
        if os.stat(path).st_ino == mine:  # still ours: a later server may have replaced it
            path.unlink()
    except FileNotFoundError:
        pass


def _fork(conn: socket.socket, servers: list) -> int | None:
    """Receive a request on `conn` and fork its child; the child's pid (sent to the client too), or None."""
    try:
        head, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        body = _recv_exactly(conn, _INT.unpack(head[: _INT.size])[0], head[_INT.size :])
        if body is None:
            raise OSError("the client hung up")
        request = json.loads(body)
    except (OSError, ValueError, struct.error):
        conn.close()
        return None
    if len(fds) != 3:
        conn.close()
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for other in servers:  # the listener, the selector, other jobs' connections
                other.close()
            code = _child(conn, request, fds)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    print(
        f"{time.strftime('%Y-%m-%dT%H:%M:%S')} forked {pid}: {' '.join(request['argv'])} in {request['cwd']}",
        flush=True,
    )
    try:
        conn.sendall(_INT.pack(pid))
    except OSError:
        pass
    return pid


def _child(conn: socket.socket, request: dict, fds: list[int]) -> int:
    os.setsid()  # a process group of its own, which it takes down if its client dies
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    for stream in (sys.stdout, sys.stderr):  # as a new interpreter would: line-buffered on a terminal
        stream.reconfigure(line_buffering=stream is sys.stderr or os.isatty(stream.fileno()))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = request["argv"]
    sys.path[:] = request["path"]
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=_die_with_client, args=(conn,), name="warm-client", daemon=True).start()
    # This package as it is on disk now, not as the server imported it.
    for name in [m for m in sys.modules if m == __package__ or m.startswith(f"{__package__}.")]:
        del sys.modules[name]
    from gsm8k_pipeline import cli

    try:
        cli.main(sys.argv[1:])
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    import atexit

    atexit._run_exitfuncs()  # what a cold interpreter runs at exit (flushing logs, removing temp folders)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    return code


def _exit_code(code) -> int:
    """The exit status a cold interpreter gives `sys.exit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _die_with_client(conn: socket.socket) -> None:
    """The client sends nothing after its request: a read returns only once it has gone."""
    try:
        while conn.recv(1 << 10):
            pass
    except OSError:
        pass
    os.killpg(0, signal.SIGKILL)


def launch(path: Path) -> None:
    """Start the server as a daemon and return once it serves at `path` (exit 0) or has died (exit 1). The
    server's parent is gone before it serves: a stage forked from it has no engine among its ancestors, so its
    own watchdog (cli.watch_engine) watches nothing, and the client's watches the engine that started it."""
    ready_r, ready_w = os.pipe()
    if os.fork():
        os.close(ready_w)
        os._exit(0 if os.read(ready_r, 1) == b"1" else 1)
    os.close(ready_r)
    os.setsid()  # no terminal, and not in the job's process group: an engine stopping a job spares it
    serve(path, ready_w)


if __name__ == "__main__":
    launch(Path(sys.argv[1]))
