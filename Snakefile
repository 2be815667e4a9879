# gsm8k-pipeline — the Snakemake side of the DAG (dvc.yaml is the other; tests/test_parity.py keeps them equal).
# Every knob lives in params.yaml; edit it, then rerun: only stale jobs run.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# This checkout's package, not whichever copy happens to be installed.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from gsm8k_pipeline import PipelineError  # noqa: E402
from gsm8k_pipeline.params import ParamsError, read, validate  # noqa: E402


# Invalid params stop the run here, in one line, before Snakemake plans or touches anything: the same
# checks (schema and code) as every `gsm8k` command, which would otherwise fail only once its job started.
def _params_error(exc):
    given = [f"--configfile {f}" for f in workflow.config_settings.configfiles] + (
        ["--config"] if workflow.config_settings.config else [])
    sys.exit(f"snakemake: error: {exc}" + (f" (params.yaml with {', '.join(given)})" if given else ""))


try:  # duplicate keys, bad bytes: Snakemake's own loader keeps the last of a key given twice
    for _file in ["params.yaml", *workflow.config_settings.configfiles]:
        read(Path(os.path.relpath(_file)))  # named as on the command line
except ParamsError as exc:
    _params_error(exc)

configfile: "params.yaml"

try:
    validate(config, Path("params.yaml"))
except ParamsError as exc:
    _params_error(exc)


# What only the machine can tell, when the jobs run on this one (not on a cluster's nodes; not a dry run,
# which runs no onstart): Snakemake removes a job's outputs before the job could refuse them.
onstart:
    if workflow.local_exec and not workflow.touch:
        from gsm8k_pipeline.device import check_precision  # noqa: E402

        try:
            check_precision(config["precision"])
        except PipelineError as exc:  # named like the params errors, in one line
            _params_error(f"params.yaml: {exc}")


# `snakemake --report report.html` (after a run) opens on the leaderboard stage's answer: the Answer to both
# research questions, the methods table and the plots; the plots and the per-run CSV are its results.
report: "metrics/answer.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/leaderboard.smk"


rule all:
    default_target: True
    input:
        rules.leaderboard.output,
