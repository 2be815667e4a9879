"""A throwaway one-node SLURM cluster on localhost for tests/test_slurm.py (Debian's slurmctld, slurmd,
slurm-client and munge; `.ci/run` installs them when missing). Needs root.

`Slurm(tmp).start()` writes a slurm.conf and the daemons' state and logs under `tmp`, a munge key in a
temp dir of its own, starts munged (as user munge, on its own socket), slurmctld and `slurmd -N localhost`
in the foreground as children of this process, and waits until the node is idle; `stop()` cancels
leftover jobs and stops the three daemons by their PIDs. snakemake-executor-plugin-slurm removes every SLURM_* variable (SLURM_CONF
included) before the `srun` inside each job, so the config must be at /etc/slurm/slurm.conf: it is
symlinked there while the cluster runs (an existing file there is refused, never replaced).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch")
ETC_CONF = Path("/etc/slurm/slurm.conf")


def missing() -> list[str]:
    return [b for b in BINARIES if not Path(b).exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mb() -> int:
    kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return kb // 1024 * 3 // 4  # slurmd drains a node that has less than its RealMemory


class Slurm:
    def __init__(self, tmp: Path):
        if missing():
            raise RuntimeError(
                f"missing {', '.join(missing())}: apt-get install -y slurmctld slurmd "
                "slurm-client munge (.ci/run does this)"
            )
        self.dir = Path(tmp)
        self.cpus = os.cpu_count() or 1
        # munged runs as user munge, which cannot enter pytest's private (0700) temp dirs: its own dir.
        self.munge = Path(tempfile.mkdtemp(prefix="gsm8k-munge-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self._linked = False

    def _conf(self) -> str:
        d = self.dir
        return "\n".join(
            [
                "ClusterName=gsm8ktest",
                "SlurmctldHost=localhost",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                "AuthType=auth/munge",
                f"AuthInfo=socket={self.munge / 'munge.socket'}",
                f"StateSaveLocation={d / 'ctld'}",
                f"SlurmdSpoolDir={d / 'spool'}",
                f"SlurmctldPidFile={d / 'slurmctld.pid'}",
                f"SlurmdPidFile={d / 'slurmd.pid'}",
                f"SlurmctldLogFile={d / 'slurmctld.log'}",
                f"SlurmdLogFile={d / 'slurmd.log'}",
                # No cgroups here: processes tracked through /proc; task/none lacks the CPU binding that
                # srun asks for whenever a job has more than one CPU, task/affinity has it.
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/affinity",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "DefMemPerCPU=500",  # else a job that names no memory takes the whole node's
                # No slurmdbd (sacct cannot answer): finished jobs stay visible to squeue/scontrol for 10 min,
                # which the plugin's squeue status command (profiles/slurm) relies on, and so does the test.
                "MinJobAge=600",
                "AccountingStorageType=accounting_storage/none",
                "JobAcctGatherType=jobacct_gather/none",
                "MpiDefault=none",
                "ReturnToService=2",
                "SlurmdTimeout=60",
                f"NodeName=localhost CPUs={self.cpus} RealMemory={_mem_mb()} State=UNKNOWN",
                "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def start(self, timeout: float = 60) -> Slurm:
        try:
            d = self.dir
            for sub in ("ctld", "spool"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            if ETC_CONF.is_symlink() and not ETC_CONF.exists():  # dangling: left by a killed run of this
                ETC_CONF.unlink()
            if ETC_CONF.exists() or ETC_CONF.is_symlink():
                raise RuntimeError(f"{ETC_CONF} exists: another SLURM set-up on this machine; not replacing it")
            (d / "slurm.conf").write_text(self._conf())
            ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
            ETC_CONF.symlink_to(d / "slurm.conf")
            self._linked = True
            # munged refuses a key or socket directory that others can write.
            m = self.munge
            key = m / "munge.key"
            key.write_bytes(os.urandom(128))
            key.chmod(0o600)
            for path in (key, m):
                shutil.chown(path, "munge", "munge")
            m.chmod(0o755)
            self._spawn(
                "munged",
                [
                    "runuser",
                    "-u",
                    "munge",
                    "--",
                    "/usr/sbin/munged",
                    "--foreground",
                    f"--key-file={key}",
                    f"--socket={self.munge / 'munge.socket'}",
                    f"--pid-file={m / 'munged.pid'}",
                    f"--log-file={m / 'munged.log'}",
                    f"--seed-file={m / 'munged.seed'}",
                ],
            )
            self._wait(lambda: (self.munge / "munge.socket").exists(), timeout, "munged's socket")
            self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-i"])
            self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), timeout, "slurmctld to answer")
            self._spawn("slurmd", ["/usr/sbin/slurmd", "-D", "-N", "localhost"])
            self._wait(lambda: self._ok(["sinfo", "-h", "-o", "%T"], "idle"), timeout, "the node to be idle")
        except BaseException:
            self.stop()  # whatever had started, and the /etc symlink
            raise
        return self

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with open(self.dir / f"{name}.out", "wb") as log:  # the child keeps its own copy of the fd
            self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _ok(self, cmd: list[str], expect: str) -> bool:
        try:
            return expect in subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except subprocess.TimeoutExpired:  # a daemon still starting; _wait's deadline bounds the retries
            return False

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead or time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                    for p in sorted(self.dir.glob("*.out")) + sorted(self.dir.glob("*.log"))
                )
                raise RuntimeError(f"waiting for {what}: {'exited ' + str(dead) if dead else 'timed out'}\n{logs}")
            time.sleep(0.2)

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers (MinJobAge), finished ones included: `scontrol show job`."""
        out = subprocess.run(
            ["scontrol", "-o", "show", "job"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        jobs = []
        for line in out.splitlines():
            fields = {}
            for token in line.split():  # KEY=VALUE pairs; a value with spaces (Command=...) is cut, unused
                key, sep, value = token.partition("=")
                if sep:
                    fields[key] = value
            jobs.append(fields)
        return jobs

    def stop(self) -> None:
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, timeout=10)
        for name in ("slurmd", "slurmctld", "munged"):  # reverse order of start
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._linked and ETC_CONF.is_symlink():
            ETC_CONF.unlink()
            self._linked = False
        shutil.rmtree(self.munge, ignore_errors=True)
