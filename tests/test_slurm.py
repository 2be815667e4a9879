"""The DAG through a real one-node SLURM cluster (tests/slurm.py) with the repo's profiles/slurm, exactly as
docs/cluster.md submits it: every job goes through sbatch with the resources params.yaml
declares, the outputs equal a local run's, and a failing stage fails the workflow with its log on the console.

Each SLURM job costs 10-25 s of Snakemake start-up inside the job on 2 cores, so this runs a prefix of the
test-sized DAG: download -> base_model -> prep_sft -> eval@prep_sft (one job of each resource kind but
`generate`, whose mapping to SLURM is the same function)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

import slurm
from conftest import make_checkout, outputs, run, test_params
from engines import snakemake_plan

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(slurm.missing()),
        reason=f"SLURM/munge binaries missing ({', '.join(slurm.missing())}); "
        "apt-get install -y slurmctld slurmd slurm-client munge (.ci/run does this)",
    ),
]

TARGET = "metrics/eval/prep_sft.json"
# docs/cluster.md's command. The profile's first status check comes 10 s after a submission, and each check
# that finds no job finished waits 10 s longer than the last: made for jobs of hours, it left this test's
# jobs of seconds waiting on their next check for most of their time. 2 s, for the test only.
SUBMIT = ["snakemake", "--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "2"]
# Distinct per kind, so each job's request shows which kind it was given; cpus = threads = the node's 2.
RESOURCES = {
    "train": {"gpus": 0, "cpus": 2, "mem_mb": 2500, "runtime": 20},
    "generate": {"gpus": 0, "cpus": 2, "mem_mb": 1800, "runtime": 10},
    "eval": {"gpus": 0, "cpus": 2, "mem_mb": 1500, "runtime": 10},
}
# rule -> (NumCPUs, MinMemoryNode, TimeLimit) in SLURM's record. download and base_model declare no
# resources: the profile's default-resources, and CPUs from their threads (1, and `threads` for base_model).
EXPECTED = {
    "download": ("1", "2000M", "00:30:00"),
    "base_model": (str(test_params()["threads"]), "2000M", "00:30:00"),
    "prep_sft": ("2", "2500M", "00:20:00"),
    "eval": ("2", "1500M", "00:10:00"),
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = slurm.Slurm(tmp_path_factory.mktemp("slurm")).start()
    yield c
    c.stop()


def timed(cmd: list[str], cwd: Path, timeout: float):
    start = time.monotonic()
    proc = run(cmd, cwd, check=False, timeout=timeout)
    return proc, time.monotonic() - start


def _stage_processes(checkout: Path) -> list[int]:
    """The `gsm8k` stage processes running in `checkout` (SLURM starts them under its own daemons)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and os.readlink(proc / "cwd") == str(checkout)
                and os.path.basename((proc / "cmdline").read_bytes().split(b"\0")[1]) == b"gsm8k"
            ):
                pids.append(int(proc.name))
        except (OSError, IndexError):  # gone, or not ours to read
            continue
    return pids


@contextlib.contextmanager
def slowed(checkout: Path, factor: int = 5, period: float = 0.05):
    """Every stage process in `checkout` runs `factor` times slower: stopped for all but 1/factor of each
    period (SIGSTOP/SIGCONT, as cpulimit does). What it computes is unchanged; every clock it reads is not.
    Yields the set of the processes it slowed."""
    done = threading.Event()
    slowed_pids: set[int] = set()

    def signal_all(pids, sig):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def throttle():
        pids = []
        while not done.is_set():
            stopped = time.monotonic()
            signal_all(pids, signal.SIGSTOP)
            # Look for new stage processes while the known ones are stopped: the scan takes tens of ms.
            found = _stage_processes(checkout)
            signal_all(found, signal.SIGSTOP)
            # One that the scan no longer finds is continued at once, never left stopped: a child forked by a
            # stage (git, lm-eval's subprocesses) looks like the stage until it execs, and a stopped child
            # that exec'd would stay stopped, its stage waiting on it until SLURM's time limit.
            signal_all(set(pids) - set(found), signal.SIGCONT)
            pids = found
            slowed_pids.update(pids)
            time.sleep(max(0.0, stopped + period * (factor - 1) / factor - time.monotonic()))
            signal_all(pids, signal.SIGCONT)
            time.sleep(period / factor)
        signal_all(pids, signal.SIGCONT)

    thread = threading.Thread(target=throttle, daemon=True)
    thread.start()
    try:
        yield slowed_pids
    finally:
        done.set()
        thread.join()


def test_dag_through_slurm_matches_local_with_declared_resources(cluster, tmp_path):
    params = test_params(resources=RESOURCES)
    on_slurm = make_checkout(tmp_path / "slurm", params)
    local = make_checkout(tmp_path / "local", params)

    # The local run alongside the SLURM one, whose throttled jobs leave the CPU idle most of the time.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        local_run = pool.submit(timed, ["snakemake", "--cores", "2", TARGET], local, timeout=600)
        with slowed(on_slurm) as throttled:  # a slow cluster: its outputs must still equal a fast local run's
            proc, slurm_s = timed([*SUBMIT, TARGET], on_slurm, timeout=900)
        done, local_s = local_run.result()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    clock = [json.loads((r / "metrics/eval/prep_sft/timings.json").read_text()) for r in (on_slurm, local)]
    ratio = clock[0]["process_seconds"] / clock[1]["process_seconds"]
    print(f"\n{TARGET}: SLURM {slurm_s:.0f} s, local {local_s:.0f} s; eval process {ratio:.1f}x slower on SLURM")
    assert len(throttled) >= len(EXPECTED)  # every stage's process was slowed (a ratio would depend on load)

    # Every job went through SLURM, once, with the CPUs, memory and time its rule declares.
    jobs = [j for j in cluster.jobs() if str(on_slurm) in j.get("WorkDir", "")]
    by_rule = {j["Comment"].removeprefix("rule_").split("_wildcards_")[0]: j for j in jobs}
    assert len(jobs) == len(by_rule) == len(EXPECTED), [j.get("Comment") for j in jobs]
    for rule, expected in EXPECTED.items():
        job = by_rule[rule]
        assert job["JobState"] == "COMPLETED" and job["Partition"] == "debug"
        assert (job["NumCPUs"], job["MinMemoryNode"], job["TimeLimit"]) == expected, rule

    a, b = outputs(on_slurm), outputs(local)
    assert set(a) == set(b) and {
        TARGET,
        "models/prep_sft/model/model.safetensors",
        "metrics/eval/prep_sft/summary.txt",
        "models/prep_sft/train_log.csv",
    } <= set(a)
    assert [k for k in a if a[k] != b[k]] == []  # all but the timings files (conftest.outputs)

    # Recorded in DVC afterwards (docs/cluster.md): dvc commit, then dvc status has nothing to run.
    run(["dvc", "commit", "-f", "--with-deps", "eval@prep_sft"], on_slurm, timeout=300)
    status = run(["dvc", "status", "--json", "--with-deps", "eval@prep_sft"], on_slurm, timeout=300).stdout
    assert json.loads(status or "{}") == {}
    assert (on_slurm / "dvc.lock").exists()

    # Resources say where a job runs, not what it computes: changing them reruns nothing.
    params["resources"]["train"]["mem_mb"] = 9000
    (on_slurm / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert snakemake_plan(on_slurm, TARGET) == set()

    # A GPU in params.yaml is a GPU request to SLURM: this GPU-less cluster refuses it at submission,
    # and the refused sbatch call, printed on the console, shows it.
    params["resources"]["train"]["gpus"] = 1
    (on_slurm / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = run([*SUBMIT, "--forcerun", "prep_sft", "--", TARGET], on_slurm, check=False, timeout=300)
    assert proc.returncode != 0 and "SLURM sbatch failed" in proc.stdout + proc.stderr
    assert "--mem 9000" in proc.stdout + proc.stderr and "--gpus=1" in proc.stdout + proc.stderr


def test_failing_stage_fails_the_workflow_with_its_error_on_the_console(cluster, tmp_path):
    bad = tmp_path / "bad"
    run(
        ["gsm8k", "download", "--params", "params.yaml", "--out-dir", str(bad)],
        make_checkout(tmp_path / "gen", test_params()),
    )
    lines = (bad / "train.jsonl").read_text().splitlines()
    lines[199] = json.dumps({"question": "q", "answer": "no marker"})
    (bad / "train.jsonl").write_text("\n".join(lines) + "\n")
    repo = make_checkout(tmp_path / "repo", test_params(data={"source": f"local:{bad}"}))

    proc, _ = timed([*SUBMIT, "data/gsm8k/train.jsonl"], repo, timeout=600)
    assert proc.returncode != 0
    assert f"{bad / 'train.jsonl'}:200: answer must contain exactly one '####' line" in proc.stdout + proc.stderr
    assert not (repo / "data/gsm8k/train.jsonl").exists()
