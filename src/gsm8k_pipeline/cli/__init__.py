"""`gsm8k` — one command per pipeline stage; the Snakefile and dvc.yaml call these same commands.

This is the dispatcher: each command is a module of this package (a stage's is named by the stage table,
gsm8k_pipeline.STAGES; `grade` and `params` are tools; the workspace's live in workspace/cli.py) that registers
its own subcommand with `add_cli`. Only the module of the command asked for is imported, so a stage runs
this file, its own module and what that imports (dag.code_deps), and editing another command reruns nothing.

Knob precedence: command line > environment (EVAL_SAMPLES, OUTPUT_DIR, ...) > params.yaml, resolved and
validated by params.resolve before any stage code runs. Heavy libraries are imported inside the handlers,
so `gsm8k --help` and param errors are instant.

No stage outlives its engine (Linux): when `dvc` or `snakemake` is among this process's ancestors, a daemon
thread ends the process as soon as that engine exits. Engines start stages through a shell, so a `kill -9`
of the engine would otherwise leave the stage running, writing outputs after the engine recorded (or,
rerun, started over on) them. A run started by hand has no engine ancestor and is never stopped; nor is one
under `nohup dvc repro &` whose terminal closed, since the engine itself lives on.

One vocabulary across every command (docs/cli.md): `--params FILE`, `--model DIR` (the model a command
reads), `--output-dir DIR` (a folder it writes), `--output FILE`/`-o` (a file it writes), `--samples N`.
Older spellings (`--out-dir`, `--model-path`, `--base-model`, `--grpo-model`, `--output-file`,
`--num-samples`) still work as hidden aliases. Every argument has help, with its default shown; a mistyped
flag or command is answered with the nearest one; output into a closed pipe (`| head -1`) ends quietly.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import os
import re
import select
import sys
import threading
import time
from pathlib import Path

from .. import STAGES, PipelineError, stage_params

# Commands that are not stages: no stage imports their modules, so editing them reruns nothing.
TOOLS = {"grade": f"{__name__}.grade", "params": f"{__name__}.params"} | {
    command: "gsm8k_pipeline.workspace.cli" for command in ("workspace", "board", "artifacts", "publish")
}


def module_of(command: str) -> str:
    """The module that implements `gsm8k <command>` (KeyError for no such command)."""
    if command in TOOLS:
        return TOOLS[command]
    if command in {s.command for s in STAGES.values()}:
        return f"{__name__}.{command.replace('-', '_')}"
    raise KeyError(command)


# --- what every stage command shares ----------------------------------------------------------------------


def add_stage(sub, command: str, help: str, replicated: bool = False) -> argparse.ArgumentParser:
    """A stage's subparser with --params, and --seed when the DAG runs it once per entry of `seeds`."""
    p = sub.add_parser(command, help=f"stage: {help}", description=f"Stage: {help}.")
    p.add_argument("--params", metavar="FILE", type=Path, default=Path("params.yaml"), help="params file")
    if replicated:
        p.add_argument(
            "--seed", metavar="N", type=int, default=None, help="training/sampling seed (default: params seed)"
        )
    return p


def alias(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept `old`, an earlier spelling of `new`, without showing it in help or suggestions: the same
    destination and type, no default of its own (so `new`'s default stands)."""
    action = next(a for a in parser._actions if new in a.option_strings)
    parser.add_argument(
        old,
        dest=action.dest,
        type=action.type,
        choices=action.choices,
        metavar=action.metavar,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


def split_output(args, default_dir: str | None, default_name: str) -> tuple[str | None, str]:
    """(--output-dir, --output-file) from `--output FILE`, or from the hidden pair `--output-dir DIR
    --output-file NAME` that `--output` replaces (either part may be left to its default)."""
    from .. import PipelineError

    if args.output is not None:
        if args.output_dir is not None or args.output_file is not None:
            raise PipelineError("give --output FILE alone, not with --output-dir or --output-file")
        return str(args.output.parent), args.output.name
    return args.output_dir or default_dir, args.output_file or default_name


def params_for(args, stage: str, cli: dict | None = None) -> dict:
    """The params `stage` reads — params.yaml < environment < command line, validated (params.resolve) —
    restricted to the sections STAGES declares for it, plus `run`. A stage that read an undeclared section
    would fail here rather than rerun too little."""
    from ..params import resolve

    resolved = resolve(args.params, cli)
    return stage_params(stage, resolved) | {"run": resolved["run"]}


def set_threads(params: dict, threads: int | None = None) -> None:
    """torch's CPU threads, from params.yaml (`threads`, or a stage's own, e.g. prep_sft.threads): the thread
    count can change float sums, and Snakemake sets OMP_NUM_THREADS to the job's threads while DVC leaves
    torch's default, so without this the two engines could train different weights."""
    import torch

    torch.set_num_threads(threads or params["threads"])


def output_dir(params: dict, default: str) -> Path:
    """--output-dir, else $OUTPUT_DIR (both resolved into run.output_dir), else the stage's default."""
    return Path(params["run"]["output_dir"] or default)


# --- the dispatcher ---------------------------------------------------------------------------------------


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with every option's default shown, as ArgumentDefaultsHelpFormatter does, except
    where there is nothing to show (None, a flag's False) or the help already says it ("default: ...")."""

    def _get_help_string(self, action):
        help = action.help or ""
        if (
            "%(default)" in help
            or "default:" in help
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return help
        return f"{help} (default: %(default)s)" if help else "default: %(default)s"


def _close(word: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


class Parser(argparse.ArgumentParser):
    """The parser of `gsm8k` and of every subcommand (argparse makes subparsers of the parent's class):
    defaults in help, and a wrong flag or command answered with the nearest right one (Python 3.14's
    suggest_on_error, for the 3.11 and 3.12 this project runs on)."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def options(self) -> list[str]:
        """The long options help shows (hidden aliases left out)."""
        return [o for a in self._actions if a.help != argparse.SUPPRESS for o in a.option_strings if o.startswith("--")]

    def chosen(self, argv: list[str]) -> Parser:
        """The innermost (sub)parser that `argv` selects: where an unknown flag belongs."""
        parser = self
        for word in argv:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if subs and word in subs[0].choices:
                parser = subs[0].choices[word]
        return parser

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            target = self.chosen(args)
            hints = []
            for word in extras:
                flag = word.split("=", 1)[0]
                if flag.startswith("--") and (near := _close(flag, target.options())):
                    hints.append(f"{flag}: did you mean {near}?")
            target.error(f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else ""))
        return namespace

    def error(self, message: str):
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m and (near := _close(m[1], re.findall(r"'([^']*)'", m[2]))):
            message += f"; did you mean {near!r}?"
        super().error(message)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("gsm8k-pipeline")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `gsm8k` parser: the full parser of `command` only; of every command when it names none."""
    parser = Parser(prog="gsm8k", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = list(dict.fromkeys(s.command for s in STAGES.values())) + list(TOOLS)
    try:
        wanted = [module_of(command)]
    except KeyError:  # no command or an unknown one: list them all
        wanted = [module_of(c) for c in commands]
    for module in dict.fromkeys(wanted):
        importlib.import_module(module).add_cli(sub)
    return parser


def _log_warnings(command: str) -> None:
    """The package's warnings (e.g. contamination) as one line each on stderr, named like its errors. Only
    the package's logger: libraries' own warnings keep their own format."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"gsm8k {command}: warning: %(message)s"))
    package = logging.getLogger(__package__.rpartition(".")[0])
    package.handlers[:] = [handler]
    package.setLevel(logging.WARNING)
    package.propagate = False


# The exit status of a command whose reader closed the pipe (`gsm8k board list | head -1`): a shell's for a
# process killed by SIGPIPE, which Python ignores (it raises BrokenPipeError instead).
CLOSED_PIPE_EXIT = 128 + 13


def main(argv: list[str] | None = None) -> None:
    # First, so that no stage outlives a `dvc` or `snakemake` killed while it runs.
    watch_engine()
    argv = sys.argv[1:] if argv is None else argv
    try:
        try:
            args = build_parser(next((a for a in argv if not a.startswith("-")), None)).parse_args(argv)
        except SystemExit as exc:  # --help, --version or a usage error, printed by argparse
            code = exc.code
        else:
            _log_warnings(args.command)
            try:
                code = args.func(args)
            except PipelineError as exc:
                print(f"gsm8k {args.command}: error: {exc}", file=sys.stderr)
                code = 2
            except OSError as exc:
                # The machine's storage, not a bug: one line naming the file. Stages write each file whole or
                # not at all (fileio), so what the failed write was for is absent, not half-written.
                if exc.errno not in STORAGE_ERRORS:
                    raise
                print(f"gsm8k {args.command}: error: {exc.filename or 'a write'}: {exc.strerror}", file=sys.stderr)
                code = 2
        sys.stdout.flush()  # here, so that a closed pipe is met inside the try
    except BrokenPipeError:
        # The reader has gone: nothing more to say. Point stdout at /dev/null so that Python's own flush at
        # exit doesn't fail again and print "Exception ignored ... BrokenPipeError".
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = CLOSED_PIPE_EXIT
    sys.exit(code)


# A full disk or quota, a file-size limit, a read-only file system.
STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


# --- no stage outlives its engine --------------------------------------------------------------------------

ENGINES = ("dvc", "snakemake")
ORPHANED_EXIT = 3  # the exit status of a stage stopped because its engine died


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
        print(
            f"gsm8k: {name} (pid {pid}), which started this stage, exited: stopping the stage too, so no "
            "later run finds it still writing",
            file=sys.stderr,
            flush=True,
        )
    finally:  # stderr may be a pipe the engine no longer reads: stop whatever printing does
        os._exit(ORPHANED_EXIT)


def watch_engine() -> tuple[int, str] | None:
    """Start the watchdog if an engine started this process; returns the engine watched, if any."""
    found = engine_ancestor()
    if found is not None:
        threading.Thread(target=_stop_when_gone, args=found, name="engine-watchdog", daemon=True).start()
    return found
