"""The `gsm8k` command line as a user meets it: one vocabulary (the older spellings still accepted, hidden),
help for every argument with its default, --version, the nearest flag or command suggested for a wrong one,
and output into a closed pipe ending quietly. Fast: parsers only, plus a few real subprocesses."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from conftest import REPO
from gsm8k_pipeline import STAGES, PipelineError
from gsm8k_pipeline.cli import build_parser, split_output

STAGE_COMMANDS = list(dict.fromkeys(s.command for s in STAGES.values()))

# Old spelling -> the one flag every command now uses for its concept, per command that had it.
ALIASES = {
    "download": {"--out-dir": "--output-dir"},
    "base-model": {"--out-dir": "--output-dir"},
    "leaderboard": {"--out-dir": "--output-dir"},
    "evaluate": {"--model-path": "--model"},
    "train-sft": {"--base-model": "--model"},
    "train-grpo": {"--base-model": "--model"},
    "generate-traces": {"--grpo-model": "--model", "--num-samples": "--samples"},
}
HIDDEN = {old for aliases in ALIASES.values() for old in aliases} | {"--output-file"}


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(argv)


def parsers(parser: argparse.ArgumentParser | None = None, name: str = "gsm8k"):
    """(name, parser) of `gsm8k` and every (sub)command under it, at any depth."""
    parser = parser or build_parser()
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def gsm8k(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gsm8k_pipeline.cli", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.parametrize("command", sorted(ALIASES))
def test_old_spellings_are_hidden_aliases_of_the_shared_flags(command):
    required = ["--stage", "prep"] if command == "train-sft" else []
    for old, new in ALIASES[command].items():
        value = "7" if new == "--samples" else "some/where"
        with_new = parse([command, *required, new, value])
        with_old = parse([command, *required, old, value])
        assert vars(with_old) == vars(with_new)
        dest = new.lstrip("-").replace("-", "_")
        assert str(getattr(with_new, dest)) == value
        help = build_parser(command)._subparsers._group_actions[0].choices[command].format_help()
        assert new in help and old not in help  # hidden


def test_the_shared_flags_mean_one_thing_everywhere():
    """--model is the model a command reads, --output-dir the folder it writes, --output the file, --samples
    how many problems or examples: each stage that has the concept has that flag, and none of the others."""
    wanted = {
        "--model": {"train-sft", "train-grpo", "generate-traces", "evaluate"},
        "--output-dir": {"download", "base-model", "train-sft", "train-grpo", "leaderboard"},
        "--output": {"check-params", "generate-traces", "evaluate", "select"},
        "--samples": {"train-sft", "train-grpo", "generate-traces", "evaluate"},
    }
    for flag, commands in wanted.items():
        for command in STAGE_COMMANDS:
            sub = dict(parsers())[f"gsm8k {command}"]
            assert (flag in sub.options()) == (command in commands), (flag, command)
    for name, parser in parsers():
        assert not HIDDEN & set(parser.options()), name


def test_output_file_or_the_old_folder_and_name():
    ns = parse(["evaluate", "--output", "metrics/eval/grpo_8_s0.json"])
    assert split_output(ns, None, "base.json") == ("metrics/eval", "grpo_8_s0.json")
    ns = parse(["evaluate", "--output-dir", "out", "--output-file", "grpo_8_s0.json"])
    assert split_output(ns, None, "base.json") == ("out", "grpo_8_s0.json")
    ns = parse(["generate-traces", "--model", "m", "--output-file", "t.jsonl"])
    assert split_output(ns, "data/traces", "traces.jsonl") == ("data/traces", "t.jsonl")
    assert split_output(parse(["evaluate"]), None, "base.json") == (None, "base.json")  # $OUTPUT_DIR decides
    with pytest.raises(PipelineError, match="--output FILE alone"):
        split_output(parse(["evaluate", "--output", "a/b.json", "--output-dir", "c"]), None, "base.json")


def test_the_engines_use_the_shared_flags_only():
    """Snakefile rules and dvc.yaml's commands are written in the current vocabulary, not the aliases."""
    for path in [REPO / "dvc.yaml", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", path.read_text()))
        assert not flags & HIDDEN, (path.name, flags & HIDDEN)


def test_every_argument_has_help_and_every_default_is_shown():
    for name, parser in parsers():
        text = parser.format_help()
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, (name, action.option_strings or action.dest)
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                shown = " ".join(text.split())  # help wraps lines
                assert f"default: {action.default}" in shown, (name, action.option_strings)


def test_help_shows_defaults_on_the_command_line():
    proc = gsm8k("train-grpo", "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    text = " ".join(proc.stdout.split())
    assert "--model DIR the model folder to start from (default: models/prep_sft/model)" in text
    assert "--params FILE params file (default: params.yaml)" in text


def test_version():
    from importlib.metadata import version

    proc = gsm8k("--version")
    assert proc.returncode == 0 and proc.stdout == f"gsm8k {version('gsm8k-pipeline')}\n"


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["evaluate", "--ouput", "x.json"], "--ouput: did you mean --output?"),
        (["train-sft", "--stage", "prep", "--model-pth", "m"], "--model-pth: did you mean --model?"),
        (["download", "--output-dri=d"], "--output-dri: did you mean --output-dir?"),
        (["board", "list", "--jsn"], "--jsn: did you mean --json?"),
        (["evalute"], "did you mean 'evaluate'?"),
        (["artifacts", "lst"], "did you mean 'list'?"),
    ],
)
def test_a_wrong_flag_or_command_suggests_the_right_one(argv, hint):
    proc = gsm8k(*argv)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("usage: gsm8k") and "Traceback" not in proc.stderr
    assert hint in proc.stderr.splitlines()[-1]  # the error, one line after the usage


def test_a_missing_required_model_is_one_line():
    proc = gsm8k("generate-traces")
    assert proc.returncode == 2
    assert (
        proc.stderr == "gsm8k generate-traces: error: --model DIR is required: the GRPO model folder to sample from\n"
    )


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """A reader that stops early (`| head -1`) closes the pipe; the command stops without a traceback."""
    ws = tmp_path / "ws"
    assert gsm8k("workspace", "init", str(ws)).returncode == 0
    body = tmp_path / "body.md"
    body.write_text("a long line of results\n" * 20_000)  # far more than a pipe holds (64 KiB)
    post = gsm8k(
        "board", "post", "--workspace", str(ws), "--agent-id", "tester", "--type", "result", "--title", "t",
        "--body-file", str(body),
    )  # fmt: skip
    assert post.returncode == 0, post.stderr
    # The brief's own example, through a shell pipe into head.
    proc = subprocess.run(
        f"{sys.executable} -m gsm8k_pipeline.cli board list --json --workspace {ws} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
    )
    assert proc.returncode == 0 and proc.stdout == "[\n"
    assert proc.stderr == ""
    # A pipe closed before the command writes at all: every write fails, still no traceback.
    # (argparse itself drops what --help can't write, and exits 0.)
    for argv, status in ((["board", "list", "--json", "--workspace", str(ws)], 141), (["--help"], 0)):
        child = subprocess.Popen(
            [sys.executable, "-m", "gsm8k_pipeline.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        child.stdout.close()
        assert child.wait(timeout=60) == status, argv  # 141: as a shell reports a process killed by SIGPIPE
        assert child.stderr.read() == b"", argv
        child.stderr.close()
