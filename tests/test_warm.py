"""Warm starts (gsm8k_pipeline.warm): a stage forked from a server that has imported the libraries writes what a
cold `gsm8k` writes, exits as it does, and dies with its client. Each test's server is its own (TMPDIR names the
socket's folder), so its log lists exactly the jobs it forked."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import test_params
from gsm8k_pipeline.guards import lock_file
from gsm8k_pipeline.timings import is_timings_file


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """params.yaml, data, the tiny base model, and a TMPDIR of its own (its own warm-start server)."""
    root = tmp_path_factory.mktemp("warm")
    (root / "tmp").mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(test_params(prep_sft={"samples": 24, "epochs": 1})))
    for command in (["download"], ["base-model"]):
        gsm8k(root, *command)
    return root


def env_of(root: Path, **extra) -> dict:
    return os.environ | {"TMPDIR": str(root / "tmp")} | extra


def gsm8k(root: Path, *args, check: bool = True, **extra) -> subprocess.CompletedProcess:
    proc = subprocess.run(["gsm8k", *args], cwd=root, env=env_of(root, **extra), capture_output=True, text=True)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def served(root: Path) -> list[str]:
    """The jobs the server of `root`'s environment forked, as its log lists them."""
    logs = list((root / "tmp" / f"gsm8k-warm-{os.getuid()}").glob("*.log"))
    return [line for log in logs for line in log.read_text().splitlines() if " forked " in line]


def files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not is_timings_file(p)
    }


def test_a_warm_stage_writes_what_a_cold_one_writes(workdir, tmp_path):
    """Training and evaluating, warm and then cold (GSM8K_WARM=0), each in a copy of the same folder: the same
    bytes, timings files aside."""
    before = len(served(workdir))  # the fixture's base-model, warm too
    for mode, warm in (("warm", "1"), ("cold", "0")):
        root = shutil.copytree(workdir, tmp_path / mode, ignore=shutil.ignore_patterns("tmp"))
        run = dict(cwd=root, env=env_of(workdir, GSM8K_WARM=warm), check=True)
        subprocess.run(["gsm8k", "train-sft", "--stage", "prep", "--output-dir", "prep"], **run)
        subprocess.run(["gsm8k", "evaluate", "--model", "prep/model", "-o", "eval/prep.json", "--samples", "8"], **run)
    jobs = served(workdir)[before:]
    assert len(jobs) == 2 and "train-sft" in jobs[0] and "evaluate" in jobs[1], jobs
    warm, cold = files(tmp_path / "warm"), files(tmp_path / "cold")
    assert "prep/model/model.safetensors" in warm and "eval/prep.json" in warm
    assert warm == cold


def test_a_warm_stage_fails_as_a_cold_one_does(workdir):
    """A stage's error: the same line on stderr, the same exit status; argparse's usage errors too."""
    for args in (["evaluate", "--model", "no/such/model"], ["evaluate", "--no-such-flag"]):
        warm, cold = gsm8k(workdir, *args, check=False), gsm8k(workdir, *args, check=False, GSM8K_WARM="0")
        assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
        assert warm.returncode == 2 and "error" in warm.stderr


def start_training(root: Path, output: str) -> tuple[subprocess.Popen, int]:
    """A warm prep_sft of many epochs, and the pid of the process that trains (its output's lock holder)."""
    long = yaml.safe_load((root / "params.yaml").read_text())
    long["prep_sft"]["epochs"] = 100
    (root / "long.yaml").write_text(yaml.safe_dump(long))
    client = subprocess.Popen(
        ["gsm8k", "train-sft", "--params", "long.yaml", "--stage", "prep", "--output-dir", output],
        cwd=root,
        env=env_of(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert client.poll() is None, f"the client exited ({client.returncode}) before training started"
        if lock_file(root / output).exists():
            try:
                trainer = int(lock_file(root / output).read_text())
                break
            except (FileNotFoundError, ValueError):
                pass
        time.sleep(0.1)
    else:
        raise AssertionError("training did not start")
    assert trainer != client.pid  # forked by the server, not the client
    return client, trainer


def gone(pid: int, within: float = 10) -> bool:
    """Whether `pid` has exited (or is a zombie) within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_warm_stage_stops_with_its_client(workdir, sig):
    """An engine stops a job by signalling its process (SIGTERM), or the job's client dies (SIGKILL): the forked
    stage goes too, and the client's exit says which signal ended it."""
    client, trainer = start_training(workdir, f"stopped_{sig.name}")
    try:
        client.send_signal(sig)
        assert client.wait(timeout=30) == -sig
        assert gone(trainer), f"stage {trainer} outlived its client"
    finally:
        client.kill()
        if not gone(trainer, 0):
            os.kill(trainer, signal.SIGKILL)


def test_a_stage_starts_cold_when_no_server_can_start(workdir, tmp_path):
    """A socket path too long for a unix socket (108 bytes): the server fails at once, the job runs cold and
    succeeds, and jobs after it don't try again for a while (the `.failed` marker)."""
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    env = os.environ | {"TMPDIR": str(deep)}
    for _ in range(2):
        proc = subprocess.run(
            ["gsm8k", "evaluate", "--model", "models/base/model", "-o", "cold/base.json", "--samples", "2"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    folder = deep / f"gsm8k-warm-{os.getuid()}"
    assert len(list(folder.glob("*.failed"))) == 1
    log = next(folder.glob("*.log")).read_text()
    assert "AF_UNIX path too long" in log, log
