from gsm8k_pipeline.params import results_only

# Shared by all rules. Each rule's `input.code` lists the modules its command runs (dvc.yaml: deps),
# and `params` the params.yaml sections it reads (dvc.yaml: params), so an edit reruns just what it touches.
# Every rule that runs torch declares `threads: config["threads"]` for scheduling; the command itself sets
# torch's threads from params.yaml, since Snakemake would set OMP_NUM_THREADS to the job's (possibly scaled
# down) threads, DVC to nothing, and the thread count changes float sums and so the trained weights.
# The params file every command reads: the last --configfile given (e.g. configs/gpu.yaml), else params.yaml.
PARAMS_FILE = workflow.overwrite_configfiles[-1] if workflow.overwrite_configfiles else "params.yaml"
PKG = "src/gsm8k_pipeline"


def code(*modules):
    return [f"{PKG}/{m}.py" for m in modules]


def resources_for(kind):
    """A rule's `resources:` from params.yaml's resources.<kind> (train, generate, eval): what a scheduler
    reserves, in the names snakemake-executor-plugin-slurm turns into sbatch options (--mem, -t,
    --cpus-per-task, --gpus). Resources are not params, so changing them reruns nothing."""
    r = config["resources"][kind]
    return dict(mem_mb=r["mem_mb"], runtime=r["runtime"], cpus_per_task=r["cpus"], gpu=r["gpus"])


# What the leaderboard records and depends on: every section but where/how jobs are scheduled.
RESULT_CONFIG = results_only(config)
