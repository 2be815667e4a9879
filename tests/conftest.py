"""Shared fixtures: the repo root, real GSM8K when present, and test-sized params (tests/support/checkout.py,
which the benches import too); the workspace tests' backends (tests/support/workspace.py)."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from support.checkout import REPO, SHARED_GSM8K, built, make_checkout, outputs, run, test_params  # noqa: F401  (the tests import these from here)

# The longest test files first, so none is left running alone at the end (seconds of a worker each, measured
# 2026-12-05 in a fresh clone on 2 cores, 73aaf85): with `--dist loadfile` a file runs whole on one worker, and
# with `--no-loadscope-reorder` (tests/run.sh) pytest-xdist hands files out in this order, not by test count,
# which put the two-test SLURM file and the one-test SmolLM2 file last. Files that mostly wait (on the SLURM
# cluster, DVC's queue, concurrent publishers) are here too, so that their waits overlap other files' work.
SLOWEST_FIRST = (
    "test_slurm.py",  # 285 s, mostly waiting on its 5x throttled jobs: first, so other files fill the idle core
    "test_smollm2_dag.py",  # 245 s, two engines at once
    "test_engines.py",  # about 410 s, its two builds side by side about 180 s
    "test_sharing.py",  # 275 s, its build 195 s (the same DVC build, when test_engines.py has not made it yet)
    "test_training.py",  # 165 s
    "test_engines_hub.py",  # 120 s
    "test_guards.py",  # 70 s, a third of it waiting
    "test_select.py",  # 55 s
    "test_finite.py",  # about 45 s
    "test_sweep.py",  # 45 s, mostly DVC's queue
    "test_workspace_leaderboard.py",  # 45 s, three-quarters waiting on concurrent publishers
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files keep their own order


@pytest.fixture(scope="session")
def built_dag(tmp_path_factory, worker_id):
    """`built_dag(dest, params, engine)`: support.checkout.built, its builds kept for the session in a folder
    every pytest-xdist worker of this session sees (the workers' temp folders' parent)."""
    base = tmp_path_factory.getbasetemp()
    cache = (base if worker_id == "master" else base.parent) / "built-dags"
    cache.mkdir(exist_ok=True)
    return lambda dest, params, engine: built(dest, params, engine, cache)


@pytest.fixture(scope="session")
def built_engines(built_dag):
    """`built_engines(root, params)`: (snakemake, dvc), checkouts under `root` in which each engine built `params`
    (built_dag: once per session), the two builds side by side. Each engine runs one job at a time, so one build
    alone would leave a CPU idle: test_engines.py needs both, test_sharing.py the DVC one, and whichever of them
    runs first starts both (the suite's first files, SLURM, mostly wait)."""

    def both(root: Path, params: dict) -> tuple[Path, Path]:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            builds = [pool.submit(built_dag, root / engine / "repo", params, engine) for engine in ("snakemake", "dvc")]
            return tuple(build.result() for build in builds)

    return both


@pytest.fixture
def shared_gsm8k() -> Path:
    if not (SHARED_GSM8K / "train.jsonl").exists():
        pytest.skip("real GSM8K not present at ../shared/data/gsm8k")
    return SHARED_GSM8K


# --- the workspace tests (tests/test_workspace_*.py) -------------------------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real OpenSSH server on loopback (tests/sshd.py), one per test file."""
    from sshd import Sshd

    with Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(params=["file", "sftp"])
def backend(request, tmp_path, monkeypatch):
    """An empty workspace location on each tested backend: a local folder, and sftp:// through the real sshd."""
    from support.workspace import Backend, clean_env

    monkeypatch.delenv("GSM8K_WORKSPACE", raising=False)
    monkeypatch.delenv("GSM8K_AGENT_ID", raising=False)
    root = tmp_path / "ws"
    if request.param == "file":
        return Backend("file", root, str(root), {}, clean_env())
    server = request.getfixturevalue("sshd")
    # In-process CLI calls find the key and known_hosts where ssh clients look: $HOME/.ssh.
    monkeypatch.setenv("HOME", str(server.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return Backend("sftp", root, server.url(root), server.storage_options, server.client_env(), server)


@pytest.fixture
def ws(backend):
    """An initialised workspace on each tested backend."""
    from gsm8k_pipeline.workspace.layout import init

    with backend.store() as store:
        init(store)
    return backend
