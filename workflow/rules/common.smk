# Shared by all rules. What each rule runs, reads and writes comes from the stage table (STAGES in
# src/gsm8k_pipeline/__init__.py), the one place both engines' declarations are checked against
# (tests/test_parity.py), and its code from the planning module src/gsm8k_pipeline/dag.py:
# - `code(command)`: the source files the command really executes (its import closure), as inputs;
# - `stage_params(stage)`: the params.yaml sections (or keys) the stage reads, as params;
# - `chosen_rate(method)`: a final run's learning rate, from its selection (a checkpoint), as a param;
# - `outputs(stage)`: the stage's outputs, model folders as directory();
# Every rule that runs torch declares `threads: config["threads"]` for scheduling; the command itself sets
# torch's threads from the params, since Snakemake would set OMP_NUM_THREADS to the job's (possibly scaled
# down) threads, DVC to nothing, and the thread count changes float sums and so the trained weights.
import hashlib
import json
import os
import sys
from pathlib import Path

import yaml

# This checkout's package, not whichever copy of it happens to be installed.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
import gsm8k_pipeline  # noqa: E402
from gsm8k_pipeline import STAGES, METHODS, PipelineError, RunId, base_model, contamination, dag, fileio, training  # noqa: E402  (stdlib only)
from snakemake.exceptions import WorkflowError  # noqa: E402
from snakemake.logging import logger  # noqa: E402



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


def chosen_rate(method):
    """A final run's param: the rate select_<method> chose at its budget, read once that checkpoint has run.
    Snakemake compares file times, and a selection remade with the same choice (a grid grown by a value, a
    validation eval rerun) is a newer file: the runs take it as ancient() and rerun on this param instead,
    only when the choice moves, as DVC does with its params dependency on the selection's `chosen`."""
    def chosen(wildcards):
        path = Path(STAGES[f"select_{method}"].outputs["selection"].format(budget=wildcards.budget))
        if not path.exists():  # not made yet: the run waits for the checkpoint (tune.smk), then asks again
            getattr(checkpoints, f"select_{method}").get(budget=wildcards.budget)
        # Read directly, not through the checkpoint, which reports itself incomplete while the DAG is first
        # built and would make every final run (and what follows) look changed. When the selection is made
        # again during the run, Snakemake re-evaluates the jobs that depend on it, and so this param.
        try:
            return training.chosen_rate(path)  # as the run's --learning-rate-from reads it
        except PipelineError as exc:  # one line naming the file, not a traceback through the Snakefile
            raise WorkflowError(str(exc)) from None

    return chosen


def stage_params(stage):
    return gsm8k_pipeline.stage_params(stage, config)


def outputs(stage):
    """The stage's outputs from the stage table, its model folder (if any) as a directory()."""
    return {name: directory(path) if name == "model" else path for name, path in STAGES[stage].outputs.items()}


# Every rule's input `checked`: the check_params job runs first. Snakemake has validated the params at parse
# time already (Snakefile); the job is the one DVC needs (DVC deletes a stage's outputs before its command
# runs, so the check must be a stage of its own that precedes all others), shared so both engines run one
# DAG. Its output is constant and every input of and to it is ancient(): a params or code edit never makes
# Snakemake rerun it (a rerun of it would also hide the reruns that its dependents need for themselves:
# Snakemake skips evaluating the descendants of a job it reruns). It runs only when its output is missing.
localrules: check_params  # a second of validation: never worth a cluster job

# Which ready job starts first, when there are more than free cores (`--cores 2`): those with the higher
# priority. Every rule other stages wait for has priority GATE; the test evals (eval, eval_budget), which only
# the leaderboard waits for, come after, the long ones (boosters, lm-eval: half a minute or more) before the
# greedy-only ones, so the DAG ends on short jobs two at a time. So a five-second validation eval that unlocks
# a selection, and the GRPO runs and traces behind it, no longer wait behind booster evals: in one default run
# the last GRPO candidates' eval did, for 5 min, and the DAG ended on a chain of jobs one at a time (issue 25,
# docs/benchmarks.md). Scheduling only: no output changes, and neither engine reruns anything for it.
GATE = 2


def eval_priority(model_id):
    """1 for a test eval that runs the boosters or lm-eval on its model, 0 for a greedy-only one."""
    patterns = config["eval"]["boosters"]["models"] + config["lm_eval"]["models"]
    return int(gsm8k_pipeline.selected(model_id, patterns))


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


def base_model_content():
    """The base model's identity (`tiny`, `NAME@REVISION`, or a local folder's `sha256:…`), as a param of
    base_model: Snakemake sees only the mtime of a directory input, not edits to the files in it, so the
    content hash is what reruns base_model after a local folder changes (DVC hashes the folder itself).
    Hashes of unchanged folders are kept in .snakemake/, so planning doesn't reread the weights."""
    try:
        return base_model.identity(config["base_model"], Path(" + ".join(map(str, workflow.configfiles))),
                                   Path(".snakemake/gsm8k-content-hash"))
    except PipelineError as exc:  # one line naming the key, not a traceback through the Snakefile
        raise WorkflowError(str(exc)) from None


def remake_if_gutted(folder_pattern):
    """An input function for the rule whose directory() output is `folder_pattern`; it adds no input.
    Snakemake checks only that a directory() output exists, so a file deleted inside a model folder went
    unnoticed and the next stage failed on it. Every model folder lists its files and sizes
    (fileio.write_manifest): when the folder no longer matches, the job is forced, as `--forcerun FOLDER`
    would (and DVC's `dvc repro` does on a changed output), and what follows it reruns."""

    def check(wildcards):
        folder = folder_pattern.format(**wildcards)
        problems = fileio.manifest_problems(folder) if Path(folder).is_dir() else []
        if problems and folder not in workflow.dag.forcefiles:
            logger.warning(f"{'; '.join(problems)} (the folder's {fileio.MANIFEST} lists what its job wrote): "
                           f"remaking {folder}")
            # The set --forcerun fills. Input functions run while the DAG is built, before its needrun pass
            # reads the set. Not a documented API: tests/test_snakemake_guards.py fails if that changes.
            workflow.dag.forcefiles.add(folder)
        return []

    return check


def warn_if_contaminated(stats_path="data/gsm8k/stats.json"):
    """The download job's contamination warning goes to its log; this repeats it on the console at the end
    of every successful run, for as long as the data has it."""
    if Path(stats_path).is_file():
        found = json.loads(Path(stats_path).read_text()).get("contamination")
        if found and found["test_rows_in_train"]:
            logger.warning(f"{stats_path}: contamination: {contamination.describe(found)}")


onsuccess:
    warn_if_contaminated()
