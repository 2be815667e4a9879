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
from gsm8k_pipeline import dag  # noqa: E402

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


# Every rule's input `checked`: the check_params job runs first. Snakemake has validated the params at parse
# time already (Snakefile); the job is the one DVC needs (DVC deletes a stage's outputs before its command
# runs, so the check must be a stage of its own that precedes all others), shared so both engines run one
# DAG. Its output is constant and every input of and to it is ancient(): a params or code edit never makes
# Snakemake rerun it (a rerun of it would also hide the reruns that its dependents need for themselves:
# Snakemake skips evaluating the descendants of a job it reruns). It runs only when its output is missing.
localrules: check_params  # a second of validation: never worth a cluster job


rule check_params:
    input:
        params=ancient("params.yaml"),
        schema=ancient("workflow/schemas/params.schema.yaml"),
        code=[ancient(f) for f in code("check-params")],
    output:
        checked="data/params.ok",
    log:
        "logs/check_params.log",
    shell:
        "gsm8k check-params --params {PARAMS_FILE} --output {output.checked} > {log} 2>&1"


CHECKED = ancient(rules.check_params.output.checked)


def resources_for(kind):
    """A rule's `resources:` from params.yaml's resources.<kind> (train, generate, eval): what a scheduler
    reserves, in the names snakemake-executor-plugin-slurm turns into sbatch options (--mem, -t,
    --cpus-per-task, --gpus). Resources are not params, so changing them reruns nothing."""
    r = config["resources"][kind]
    return dict(mem_mb=r["mem_mb"], runtime=r["runtime"], cpus_per_task=r["cpus"], gpu=r["gpus"])
