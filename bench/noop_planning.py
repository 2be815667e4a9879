"""No-op planning: how long each engine takes to decide that a complete DAG has nothing to do.

    uv run python bench/noop_planning.py [REPO] [--runs 3]   # REPO (default .) must hold a complete run
    uv run python bench/noop_planning.py --build             # builds a test-sized checkout in a temp dir first

Times `snakemake -n --cores 1 metrics/all.json` and `dvc status --json` (wall seconds, min and median of
--runs, after one untimed warm-up run), and checks that both plan nothing (exit 1 otherwise). The tools are
called from this venv's bin/ directly: `uv run` would add its own start-up, reported separately as
`uv_run_overhead`, as is each tool's bare start-up (`--version`).

Python start-up dominates, so bytecode caching matters: the figures under `bytecode_cached` let Python cache
compiled modules (in a temp PYTHONPYCACHEPREFIX, the venv is left alone), as on a usual machine; if the
environment sets PYTHONDONTWRITEBYTECODE (this sandbox does), `no_bytecode_cache` gives the figures as they
are here, every module compiled from source on every call. --build runs `dvc repro` on the tests'
test-sized params, then `snakemake --touch --forceall` so Snakemake has provenance for every job, as it would
after its own run. Target (issue 4): each ≤ 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_S = 3.0
SNAKEMAKE_DRY_RUN = [str(BIN / "snakemake"), "-n", "--cores", "1", "metrics/all.json"]
DVC_STATUS = [str(BIN / "dvc"), "status", "--json"]
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def call(cmd: list[str], cwd: Path, env: dict = ENV) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def snakemake_planned(out: str) -> list[str]:
    jobs = [
        line.split()[-1].rstrip(":")
        for line in out.splitlines()
        if line.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint "))
    ]
    if not jobs and "Nothing to be done" not in out:
        sys.exit(f"unexpected snakemake -n output:\n{out}")
    return jobs


def dvc_planned(out: str) -> list[str]:
    return sorted(json.loads(out or "{}"))


def timed(cmd: list[str], cwd: Path, runs: int, env: dict, planned=None) -> dict:
    _, out = call(cmd, cwd, env)  # warm-up (page and bytecode caches, .snakemake/ bookkeeping), not timed
    result = {"cmd": " ".join([Path(cmd[0]).name, *cmd[1:]])}
    seconds = []
    for _ in range(runs):
        s, out = call(cmd, cwd, env)
        seconds.append(s)
        if planned is not None:
            result["planned"] = sorted(set(result.get("planned", [])) | set(planned(out)))
    result.update(
        seconds=[round(s, 2) for s in seconds], min=round(min(seconds), 2), median=round(statistics.median(seconds), 2)
    )
    return result


def measure(repo: Path, runs: int, env: dict) -> dict:
    result = {
        "snakemake_dry_run": timed(SNAKEMAKE_DRY_RUN, repo, runs, env, snakemake_planned),
        "dvc_status": timed(DVC_STATUS, repo, runs, env, dvc_planned),
        "startup": {
            "snakemake --version": timed([str(BIN / "snakemake"), "--version"], repo, runs, env)["median"],
            "dvc --version": timed([str(BIN / "dvc"), "--version"], repo, runs, env)["median"],
        },
    }
    result["within_target"] = all(result[k]["median"] <= TARGET_S for k in ("snakemake_dry_run", "dvc_status"))
    return result


def build(dest: Path) -> Path:
    from support.checkout import make_checkout, test_params

    repo = make_checkout(dest / "repo", test_params())
    (repo / ".git" / "info" / "exclude").write_text(".snakemake/\n/logs/\n")
    print(f"building a test-sized DAG in {repo} (dvc repro, a few minutes) ...", file=sys.stderr)
    call([str(BIN / "dvc"), "repro"], repo)
    call([str(BIN / "snakemake"), "--cores", "1", "--touch", "--forceall", "metrics/all.json"], repo)
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, nargs="?", default=Path("."))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build", action="store_true", help="first build a test-sized checkout in a temp dir")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="noop_planning_")) if args.build else None
    pycache = Path(tempfile.mkdtemp(prefix="noop_planning_pycache_"))
    try:
        repo = build(tmp) if tmp else args.repo.resolve()
        cached_env = {k: v for k, v in ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached_env["PYTHONPYCACHEPREFIX"] = str(pycache)
        result = {
            "repo": str(repo) if not tmp else "test-sized temp checkout (--build)",
            "cpus": os.cpu_count(),
            "runs": args.runs,
            "target_s": TARGET_S,
            "bytecode_cached": measure(repo, args.runs, cached_env),
        }
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            result["no_bytecode_cache"] = measure(repo, args.runs, ENV)
        if shutil.which("uv"):
            plain = timed([sys.executable, "-c", "pass"], ROOT, args.runs, cached_env)["median"]
            via_uv = timed(["uv", "run", "--no-sync", "python", "-c", "pass"], ROOT, args.runs, cached_env)["median"]
            result["uv_run_overhead"] = round(via_uv - plain, 2)
        nothing = not any(
            m[k]["planned"]
            for m in (result["bytecode_cached"], result.get("no_bytecode_cache", {}))
            for k in m
            if k in ("snakemake_dry_run", "dvc_status")
        )
        result["plans_nothing"] = nothing
        print(json.dumps(result, indent=2))
        if not nothing:
            sys.exit("something is planned: the DAG is not complete (or not up to date) in this repo")
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
