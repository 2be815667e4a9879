"""Checkouts of the pipeline for tests and benches: test-sized params, temp git repos with DVC initialised, the
one rule for comparing two runs' outputs, and running a command there."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from gsm8k_pipeline.cli.params import overlay
from gsm8k_pipeline.timings import is_timings_file

REPO = Path(__file__).resolve().parents[2]
SHARED_GSM8K = REPO.parent / "shared" / "data" / "gsm8k"

# The pipeline's files a temp checkout needs (code deps are hashed, so src/ comes too).
PIPELINE_FILES = (
    "Snakefile",
    "dvc.yaml",
    "workflow",
    "src",
    "pyproject.toml",
    "configs",
    "profiles",
    "models/pretrained",
)

TEST_SIZE = {
    "data": {"validation": 12, "synthetic": {"n_train": 312, "n_test": 24}},
    "base_model": {
        "tiny": {
            "vocab_size": 400,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        }
    },
    "eval": {"samples": 12, "batch_size": 6, "max_new_tokens": 12},
    "lm_eval": {"max_gen_toks": 16, "batch_size": 6},
    "budgets": [8],
    "seeds": [0],
    "traces": {"batch_size": 8, "max_attempts": 2, "max_new_tokens": 16},
    "train": {"save_steps": 2, "logging_steps": 1},
    "prep_sft": {"samples": 48, "epochs": 1, "batch_size": 8, "max_length": 384},
    # Grids of two rates: the selection's every path (a choice between candidates, a tie, an edge) at half
    # the shipped grid's candidates.
    "full_sft": {"epochs": 1, "batch_size": 4, "max_length": 384, "learning_rates": [1.0e-3, 3.0e-3]},
    "grpo": {
        "num_generations": 2,
        "prompts_per_step": 2,
        "max_completion_length": 16,
        "learning_rates": [5.0e-5, 1.5e-4],
    },
}


def test_params(**override) -> dict:
    """The shipped params.yaml, shrunk to test size, with `override` merged on top."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    return overlay(overlay(shipped, TEST_SIZE), override)


test_params.__test__ = False  # a helper, not a test


def run(
    cmd: list[str] | str, cwd: Path, check: bool = True, timeout: float | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, shell=isinstance(cmd, str), timeout=timeout, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}) in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@functools.cache
def dvc_initialised() -> Path:
    """The .dvc/ folder `dvc init` makes, analytics off, made once per process: every checkout copies it
    (`dvc init` and `dvc config` are two Python processes, about 0.8 s of CPU, and the suite makes dozens)."""
    folder = Path(tempfile.mkdtemp(prefix="gsm8k-dvc-init-"))
    run(["git", "init", "-q"], folder)
    run(["dvc", "init", "-q"], folder)
    run(["dvc", "config", "core.analytics", "false"], folder)
    shutil.rmtree(folder / ".dvc" / "tmp")  # DVC's own scratch space, made again where it is needed
    return folder / ".dvc"


def make_checkout(dest: Path, params: dict, source: Path = REPO) -> Path:
    """A temp git repo holding the pipeline files (of `source`, a tree of this repo) and the given params.yaml,
    with DVC initialised."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "config", "user.email", "test@example.com"], dest)
    run(["git", "config", "user.name", "test"], dest)
    shutil.copytree(dvc_initialised(), dest / ".dvc")
    shutil.copy2(source / ".dvcignore", dest / ".dvcignore")
    run(["git", "add", "-A"], dest)
    # Fixed dates: two checkouts of the same files are the same commit, which the results record names.
    run(
        ["git", "commit", "-q", "-m", "checkout"],
        dest,
        env=os.environ | {"GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"},
    )
    return dest


OUTPUT_DIRS = ("data", "models", "metrics")
BOOKKEEPING = (".gitignore", ".snakemake_timestamp")  # the engines' own files among the outputs


def outputs(root: Path, *dirs: str) -> dict[str, bytes]:
    """What a run must reproduce byte for byte, whichever engine, machine or load ran it: every file under
    `dirs` (default: all the outputs) but the timings files, which hold every wall-clock figure
    (gsm8k_pipeline/timings.py), and the engines' bookkeeping. The one rule for comparing two runs."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for d in dirs or OUTPUT_DIRS
        for p in sorted((root / d).rglob("*"))
        if p.is_file() and p.name not in BOOKKEEPING and not is_timings_file(p)
    }


def built(dest: Path, params: dict, engine: str, cache: Path) -> Path:
    """A checkout at `dest` in which `engine` ("snakemake" or "dvc") has built the whole DAG on `params`.

    The build is made once per test session, in `cache` (a folder every pytest-xdist worker sees), under a file
    lock: the first test file to ask builds it, any other waits for it, and each gets its own copy (times kept,
    so that Snakemake sees what it left), to edit and rerun as it likes. Two test files that build the same
    DAG (test_engines.py, test_sharing.py) pay for one build."""
    import hashlib
    import json

    from filelock import FileLock

    key = hashlib.sha256(json.dumps([engine, params], sort_keys=True).encode()).hexdigest()[:16]
    source = cache / f"{engine}-{key}"
    with FileLock(str(source) + ".lock"):
        if not (source / ".built").exists():
            shutil.rmtree(source, ignore_errors=True)  # a build that failed half-way is built again
            make_checkout(source, params)
            command = ["snakemake", "--cores", "1", "metrics/all.json"] if engine == "snakemake" else ["dvc", "repro"]
            run(command, source)
            (source / ".built").touch()
    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns(".built"))
    return dest
