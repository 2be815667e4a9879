"""Issue 13, with real engines and real processes: invalid params never change an output, one run per output
(a second trainer on the same folder refuses at once), and a stage never outlives the engine that started it.

The slow tests share one test-sized checkout built by DVC up to eval@base (and touched for Snakemake), each
test working on its own copy; about 2-3 minutes in all on the 2-core machine."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import make_checkout, run, test_params
from gsm8k_pipeline import PipelineError
from gsm8k_pipeline.guards import lock_file

OUTPUT_DIRS = ("data", "models", "metrics")


# --- check-params, fast ------------------------------------------------------------------------------------


def test_check_params_writes_the_same_file_for_any_valid_params_and_none_for_invalid(tmp_path):
    """Every stage depends on this file: if its content followed the params, any edit would rerun them all."""
    out = tmp_path / "data" / "params.ok"
    written = []
    for samples in (12, 6, -1):
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(test_params(eval={"samples": samples})))
        out.unlink(missing_ok=True)
        proc = subprocess.run(
            ["gsm8k", "check-params", "--params", str(path), "--output", str(out)], capture_output=True, text=True
        )
        written.append(out.read_bytes() if out.exists() else None)
        assert proc.returncode == (2 if samples < 0 else 0), proc.stderr
    assert written[0] == written[1] and written[0] and written[2] is None


def test_params_text_never_reaches_a_shell_even_under_dvc_ignore_errors(tmp_path):
    """DVC pastes budgets and seeds into its stages' shell commands before any check. A checkout checked
    once (data/params.ok present) and the deps of full_sft present: with a budget of shell text, the failed
    check removes data/params.ok, so `dvc repro --ignore-errors` runs no stage after it."""
    repo = make_checkout(tmp_path / "repo", test_params())
    run(["gsm8k", "check-params", "--params", "params.yaml", "--output", "data/params.ok"], repo)
    (repo / "models" / "prep_sft" / "model").mkdir(parents=True)
    (repo / "data" / "gsm8k").mkdir(parents=True)
    (repo / "data" / "gsm8k" / "train.jsonl").write_text("")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["budgets"] = ["8; touch PWNED; echo"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = run(["dvc", "repro", "--ignore-errors", "full_sft"], repo, check=False)
    console = proc.stdout + proc.stderr
    assert "params.yaml: budgets.0: '8; touch PWNED; echo' is not of type 'integer'" in console
    assert not list(repo.rglob("PWNED")), console
    assert not (repo / "data" / "params.ok").exists()


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path):
    """ENOSPC gave a stack trace (issue 20): a process whose files may not grow (RLIMIT_FSIZE, EFBIG as a full
    disk would give ENOSPC) gets one line, exit 2, and no file."""
    import resource

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10, 10))

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(test_params()))
    proc = subprocess.run(
        ["gsm8k", "check-params", "--output", "data/params.ok"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=limited,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("gsm8k check-params: error: ") and "File too large" in proc.stderr
    assert [p.name for p in (tmp_path / "data").iterdir()] == []


# --- the lock, fast ---------------------------------------------------------------------------------------


def test_a_second_holder_of_the_same_output_is_refused_naming_it_and_the_holder(tmp_path):
    from gsm8k_pipeline.guards import exclusive, lock_file

    out = tmp_path / "models" / "prep_sft"
    with exclusive(out):
        assert lock_file(out).read_text() == f"{os.getpid()}\n"
        with pytest.raises(PipelineError, match=rf"{out}: .*pid {os.getpid()}"):
            with exclusive(out):
                pass
    assert not lock_file(out).exists()  # released and removed: nothing left behind in the outputs' folder
    with exclusive(out):  # free again
        pass


def test_a_lock_file_left_by_a_killed_holder_does_not_block(tmp_path):
    from gsm8k_pipeline.guards import exclusive, lock_file

    out = tmp_path / "grpo" / "8" / "s0"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import time
from pathlib import Path
from gsm8k_pipeline.guards import exclusive
with exclusive(Path({str(out)!r})):
    print("held", flush=True)
    time.sleep(600)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(PipelineError, match=f"pid {holder.pid}"):
            with exclusive(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert lock_file(out).exists()  # kill -9 leaves the file; the kernel released the lock itself
    with exclusive(out):
        pass


def test_a_second_trainer_on_a_folder_in_use_fails_at_once_touching_nothing(tmp_path):
    """`gsm8k train-sft` on a folder whose lock another process holds: one line, exit 2, naming the folder
    and the holder's pid, before it looks at (or clears) the holder's checkpoints."""
    from gsm8k_pipeline.guards import exclusive

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(test_params()))
    out = tmp_path / "models" / "prep_sft"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "RUN_ID").write_text("the running trainer's")
    with exclusive(out):
        started = time.monotonic()
        proc = subprocess.run(
            [
                "gsm8k",
                "train-sft",
                "--params",
                str(params),
                "--stage",
                "prep",
                "--base-model",
                str(tmp_path / "base"),
                "--output-dir",
                str(out),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and f"{out}: " in proc.stderr and f"pid {os.getpid()}" in proc.stderr
    assert (out / "checkpoints" / "RUN_ID").read_text() == "the running trainer's"
    assert time.monotonic() - started < 30  # before torch and the model are loaded (about 2 s here)


@pytest.mark.parametrize(
    "command, output",
    [(["download"], "data/gsm8k"), (["base-model"], "models/base")],
)
def test_download_and_base_model_refuse_an_output_another_run_is_writing(tmp_path, command, output):
    """download and base-model took no lock, so DVC reran them under a running Snakemake job (issue 20,
    item 12): like the trainers, they refuse at once, naming the output and the holder, writing nothing."""
    from gsm8k_pipeline.guards import exclusive

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(test_params()))
    with exclusive(tmp_path / output):
        proc = subprocess.run(["gsm8k", *command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"{output}: another run (pid {os.getpid()}) is writing it" in proc.stderr
    assert not (tmp_path / output).exists()


@pytest.mark.parametrize(
    "argv, engine",
    [
        (["/repo/.venv/bin/python", "/repo/.venv/bin/dvc", "repro"], "dvc"),  # a console script
        (["/repo/.venv/bin/python3", "/repo/.venv/bin/snakemake", "--cores", "1"], "snakemake"),
        (["python", "-m", "snakemake", "--target-jobs", "grpo:budget=8"], "snakemake"),  # a cluster job's
        (["/usr/bin/bash", "-c", "set -euo pipefail; gsm8k train-grpo"], None),  # the shell between
        (["git", "commit", "-m", "dvc"], None),
        (["/usr/bin/python3", "-m", "pytest"], None),
    ],
)
def test_engines_are_told_from_their_command_lines(argv, engine):
    from gsm8k_pipeline.cli import _engine

    assert _engine(argv) == engine


# --- real engines -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A checkout with results: DVC built everything up to eval@base; Snakemake's provenance touched."""
    repo = make_checkout(tmp_path_factory.mktemp("built"), test_params())
    run(["dvc", "repro", "eval@base"], repo)
    run(["snakemake", "--cores", "1", "--touch", "--forceall", "metrics/eval/base.json"], repo)
    return repo


@pytest.fixture
def repo(built, tmp_path):
    return Path(shutil.copytree(built, tmp_path / "repo", symlinks=True))


def outputs(repo: Path) -> dict[str, str]:
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for d in OUTPUT_DIRS
        for p in sorted((repo / d).rglob("*"))
        if p.is_file()
    }


def set_param(repo: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# An invalid value in the section eval@base reads (DVC would rerun it), in a section no built stage reads,
# and one only the code checks (not the schema), all with results on disk.
INVALID = [
    ("eval", "samples", -1, "eval.samples: -1 is less than the minimum of 1"),
    ("grpo", "beta", "high", "grpo.beta: 'high' is not of type 'number'"),
    (
        "resources",
        "train",
        {"gpus": 0, "cpus": 1, "mem_mb": 3000, "runtime": 30},
        "resources.train.cpus: 1 is less than prep_sft.threads (2)",
    ),
]
ENGINE_RUNS = {
    "dvc": ["dvc", "repro", "eval@base"],
    "snakemake": ["snakemake", "--cores", "1", "metrics/eval/base.json"],
}


@pytest.mark.slow
@pytest.mark.parametrize("engine", sorted(ENGINE_RUNS))
@pytest.mark.parametrize("section, key, value, message", INVALID, ids=[i[0] for i in INVALID])
def test_invalid_params_stop_both_engines_before_any_output_changes(repo, engine, section, key, value, message):
    before = outputs(repo)
    assert "metrics/eval/base.json" in before
    set_param(repo, section, key, value)
    proc = run(ENGINE_RUNS[engine], repo, check=False)
    console = proc.stdout + proc.stderr
    assert proc.returncode != 0, console
    assert f"params.yaml: {message}" in console
    assert "Traceback" not in console and "On instance" not in console  # one line, not a schema dump
    # A failed check removes its own file (so no stage runs after it), and nothing else.
    before.pop("data/params.ok")
    assert outputs(repo).keys() - {"data/params.ok"} == before.keys()
    assert {k: v for k, v in outputs(repo).items() if k != "data/params.ok"} == before


def process_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (an orphan's new parent may be slow to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def trainer_pid(repo: Path, output_dir: str, owner: subprocess.Popen, timeout: float = 300) -> int:
    """The pid of the process training `output_dir` in `repo` once it is training (its checkpoints folder exists):
    the holder of the output's lock (guards.exclusive), which is the `gsm8k train-sft` process itself when it
    started cold, and the process forked for it when it started warm (gsm8k_pipeline.warm)."""
    deadline = time.monotonic() + timeout
    lock = lock_file(repo / output_dir)
    while time.monotonic() < deadline:
        assert owner.poll() is None, f"{owner.args} exited ({owner.returncode}) before training started"
        if (repo / output_dir / "checkpoints").exists():
            try:
                return int(lock.read_text())
            except (FileNotFoundError, ValueError):  # between its open and its write
                pass
        time.sleep(0.2)
    raise AssertionError(f"no trainer started in {repo} within {timeout} s")


def stop(*pids: int) -> None:
    for pid in pids:
        if process_running(pid):
            os.kill(pid, signal.SIGKILL)


ENGINE_TRAINS = {
    "dvc": ["dvc", "repro", "prep_sft"],
    "snakemake": ["snakemake", "--cores", "1", "models/prep_sft/model"],
}


@pytest.mark.slow
@pytest.mark.parametrize("engine", sorted(ENGINE_TRAINS))
def test_a_trainer_stops_when_the_engine_that_started_it_is_killed(repo, engine):
    """kill -9 of `dvc repro` / `snakemake` while prep_sft trains (hundreds of epochs: minutes of work left):
    the trainer exits within seconds instead of running on beside the next run."""
    set_param(repo, "prep_sft", "epochs", 400)
    engine_proc = subprocess.Popen(
        ENGINE_TRAINS[engine], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    trainer = None
    try:
        trainer = trainer_pid(repo, "models/prep_sft", engine_proc)
        time.sleep(1)
        assert process_running(trainer)
        engine_proc.kill()
        engine_proc.wait()
        killed = time.monotonic()
        while process_running(trainer) and time.monotonic() < killed + 10:
            time.sleep(0.05)
        assert not process_running(trainer), f"trainer {trainer} outlived {engine} by 10 s"
        print(f"trainer stopped {time.monotonic() - killed:.2f} s after kill -9 of {engine}")
    finally:
        engine_proc.kill()
        engine_proc.wait()
        if trainer:
            stop(trainer)


@pytest.mark.slow
def test_a_trainer_started_by_hand_outlives_its_shell(repo):
    """No engine among its ancestors, no watchdog: killing the shell that started it stops nothing (as with
    `nohup`), since only the death of a `dvc` or `snakemake` ancestor ends a stage."""
    set_param(repo, "prep_sft", "epochs", 400)
    shell = subprocess.Popen(
        [
            "bash",
            "-c",
            "gsm8k train-sft --stage prep --base-model models/base/model "
            "--output-dir models/prep_sft > /dev/null 2>&1; echo finished",
        ],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    trainer = None
    try:
        trainer = trainer_pid(repo, "models/prep_sft", shell)
        shell.kill()
        shell.wait()
        time.sleep(5)
        assert process_running(trainer)
    finally:
        shell.kill()
        shell.wait()
        if trainer:
            stop(trainer)


@pytest.mark.slow
def test_the_same_stage_through_a_second_engine_refuses_and_the_first_finishes_intact(repo):
    """Snakemake trains prep_sft; while it does (frozen with SIGSTOP, so the overlap is certain), `dvc repro
    prep_sft` starts the same stage: it must fail with the one-line error naming the folder and Snakemake's
    trainer, and leave that trainer's checkpoints alone, so Snakemake's run then finishes as if alone."""
    smk = subprocess.Popen(
        ENGINE_TRAINS["snakemake"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    trainer = None
    try:
        trainer = trainer_pid(repo, "models/prep_sft", smk)
        os.kill(trainer, signal.SIGSTOP)
        proc = run(ENGINE_TRAINS["dvc"], repo, check=False, timeout=600)
        os.kill(trainer, signal.SIGCONT)
        console = proc.stdout + proc.stderr
        assert proc.returncode != 0, console
        assert "models/prep_sft: " in console and f"pid {trainer}" in console, console
        out, _ = smk.communicate(timeout=600)
        assert smk.returncode == 0, out
    finally:
        smk.kill()
        if trainer:
            stop(trainer)
    assert (repo / "models/prep_sft/model/model.safetensors").exists()
    assert not (repo / "models/prep_sft/checkpoints").exists()  # removed by the run that finished, once
    steps = [line.split(",") for line in (repo / "models/prep_sft/train_log.csv").read_text().splitlines()]
    assert len(steps) > 1
    assert run(["snakemake", "-n", "--cores", "1", "models/prep_sft/model"], repo).stdout.count("rule prep_sft") == 0
