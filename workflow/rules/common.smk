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
