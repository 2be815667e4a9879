"""A real OpenSSH server on 127.0.0.1 for the sftp:// tests and bench (Debian's openssh-server).

`Sshd(tmp)` generates its own host key, a client key and an authorized_keys file under `tmp`, writes an
sshd_config (public-key only, loopback only, a free high port), starts `/usr/sbin/sshd -D -e -f CONFIG`
and waits for its banner. It also lays out a client HOME (`.ssh/id_ed25519`, `.ssh/known_hosts`) so a
`gsm8k` subprocess run with `env=sshd.client_env()` connects the ordinary way, with host-key checking.
Needs root (sshd's privilege separation) and `ssh-keygen`; `.ci/run` installs openssh-server if absent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gsm8k-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


class Sshd:
    def __init__(self, tmp: Path, user: str = "root"):
        if not Path(SSHD).exists():
            raise RuntimeError(f"{SSHD} missing: apt-get install -y openssh-server (.ci/run does this)")
        self.dir = Path(tmp)
        self.user = user
        self.port = _free_port()
        self.home = self.dir / "home"
        self.proc: subprocess.Popen | None = None

    # -- set-up --------------------------------------------------------------------------
    def start(self) -> Sshd:
        d, ssh = self.dir, self.home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        _keygen(d / "host_ed25519")
        _keygen(ssh / "id_ed25519")
        (d / "authorized_keys").write_text((ssh / "id_ed25519.pub").read_text())
        host_pub = (d / "host_ed25519.pub").read_text().split()[:2]
        (ssh / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {' '.join(host_pub)}\n")
        for p in (ssh, ssh / "id_ed25519"):
            p.chmod(0o700 if p.is_dir() else 0o600)
        (d / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {d / 'host_ed25519'}",
                    "PidFile none",
                    f"AuthorizedKeysFile {d / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    "Subsystem sftp internal-sftp",
                    "MaxStartups 200",
                    "MaxSessions 64",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation dir
        self._log = open(d / "sshd.log", "wb")
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited ({self.proc.returncode}): {(d / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sshd did not start within 15 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- client side -------------------------------------------------------------------------
    def url(self, path: str | os.PathLike, password: str | None = None) -> str:
        auth = self.user + (f":{password}" if password else "")
        return f"sftp://{auth}@127.0.0.1:{self.port}{Path(path).resolve()}"

    @property
    def storage_options(self) -> dict:
        """Connection options for in-process use (what the client HOME gives a subprocess)."""
        ssh = self.home / ".ssh"
        return {"client_keys": [str(ssh / "id_ed25519")], "known_hosts": str(ssh / "known_hosts"), "agent_path": None}

    def client_env(self, **extra: str) -> dict:
        """Environment for a `gsm8k` subprocess: HOME holds the key and known_hosts; no ssh-agent."""
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "GSM8K_WORKSPACE", "GSM8K_AGENT_ID")}
        env["HOME"] = str(self.home)
        env.update(extra)
        return env
