# Shared by all rules. What each rule runs and reads comes from src/gsm8k_pipeline/dag.py, the one place
# both engines' declarations are checked against (tests/test_parity.py):
# - `code(command)`: the source files the command really executes (its import closure), as inputs;
# - `stage_params(stage)`: the params.yaml sections the stage reads, as params;
# Every rule that runs torch declares `threads: config["threads"]` for scheduling; the command itself sets
# torch's threads from the params, since Snakemake would set OMP_NUM_THREADS to the job's (possibly scaled
# down) threads, DVC to nothing, and the thread count changes float sums and so the trained weights.
import hashlib
import os
import sys
from pathlib import Path

import yaml

# This checkout's dag.py, not whichever copy of the package happens to be installed.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from gsm8k_pipeline import base_model, dag  # noqa: E402

METHODS = dag.METHODS


wildcard_constraints:
    budget=r"\d+",
    seed=r"\d+",


def _write_params_file(config) -> str:
    """The params this run uses — params.yaml merged with any --configfile / --config, as Snakemake's own
    `config` holds them — written once, named by content, for every job's `gsm8k --params`. So a job
    reads exactly what Snakemake validated and planned with, whichever files or overrides produced it."""
    text = yaml.safe_dump(dict(config), sort_keys=False)
    path = Path(".snakemake/gsm8k-params") / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


PARAMS_FILE = _write_params_file(config)


def code(command):
    return dag.code_deps(command, workflow.basedir)


def stage_params(stage):
    return dag.stage_params(stage, config)


def resources_for(kind):
    """A rule's `resources:` from params.yaml's resources.<kind> (train, generate, eval): what a scheduler
    reserves, in the names snakemake-executor-plugin-slurm turns into sbatch options (--mem, -t,
    --cpus-per-task, --gpus). Resources are not params, so changing them reruns nothing."""
    r = config["resources"][kind]
    return dict(mem_mb=r["mem_mb"], runtime=r["runtime"], cpus_per_task=r["cpus"], gpu=r["gpus"])


def base_model_content():
    """The base model's identity (`tiny`, `NAME@REVISION`, or a local folder's `sha256:…`), as a param of
    base_model: Snakemake sees only the mtime of a directory input, not edits to the files in it, so the
    content hash is what reruns base_model after a local folder changes (DVC hashes the folder itself).
    Hashes of unchanged folders are kept in .snakemake/, so planning doesn't reread the weights."""
    from snakemake.exceptions import WorkflowError

    from gsm8k_pipeline.errors import PipelineError

    try:
        return base_model.identity(config["base_model"], Path(" + ".join(map(str, workflow.configfiles))),
                                   Path(".snakemake/gsm8k-content-hash"))
    except PipelineError as exc:  # one line naming the key, not a traceback through the Snakefile
        raise WorkflowError(str(exc)) from None
