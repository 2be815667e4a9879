#!/usr/bin/env bash
# The README's test command: installs what the tests need where it is missing, then runs them.
#   bash tests/run.sh                  # everything (CI runs exactly this, from .ci/run)
#   bash tests/run.sh -m "not slow"    # the fast tests only; any pytest arguments pass through
#   bash tests/run.sh -n 0             # in one process (pytest-xdist off)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || python3 -m pip install uv
uv sync --compile-bytecode
# System services the tests use where users meet them: a real sshd on loopback (the sftp:// workspace),
# a one-node SLURM cluster (profiles/slurm), headless Chromium (the HTML report). Debian packages.
missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
{ [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/bin/sbatch ]; } || missing="$missing slurmctld slurmd slurm-client"
[ -x /usr/sbin/munged ] || missing="$missing munge"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
# One worker per CPU, each test file on one worker (its module fixtures, e.g. the engines' built DAGs, are
# built once). The suite is CPU-bound: a third worker on two CPUs filled the waits of the files that mostly
# wait (SLURM, DVC's queue) but made every test's CPU time 13 % longer, and the suite 75 s slower
# (docs/testing.md). Files go out longest first (tests/conftest.py: SLOWEST_FIRST), not by their number of tests.
exec uv run pytest -n auto --dist loadfile --no-loadscope-reorder "$@"
