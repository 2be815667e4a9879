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

# The preflight (src/gsm8k_pipeline/preflight.py): what a run of these params needs from this machine — the
# hub, vLLM, a GPU. Every finding is a warning here, at parse time, so a dry run (`-n`) shows them and still
# plans; a real run refuses on an error in `onstart` below, before any job starts (dry runs, --touch and jobs
# that a cluster executor starts, which read this file again, skip it).
from gsm8k_pipeline import preflight  # noqa: E402

PREFLIGHT = preflight.findings(config) if workflow.is_main_process else []
for _finding in PREFLIGHT:
    print(f"snakemake: warning: preflight: {_finding.message}", file=sys.stderr)


# Then what only the machine can tell, when the jobs run on this one (not on a cluster's nodes; not a dry run,
# which runs no onstart): Snakemake removes a job's outputs before the job could refuse them. One handler:
# Snakemake keeps only the last `onstart`.
onstart:
    if not workflow.touch and (errors := [f.what for f in PREFLIGHT if f.level == "error"]):
        sys.exit(f"snakemake: error: preflight: this machine can't run these params ({', '.join(errors)}: the "
                 "warnings above name the keys); a dry run (-n) still plans")
    if workflow.local_exec and not workflow.touch:
        from gsm8k_pipeline.device import check_precision  # noqa: E402

        try:
            check_precision(config["precision"])
        except PipelineError as exc:  # named like the params errors, in one line
            _params_error(f"params.yaml: {exc}")


# `snakemake --report report.html` (after a run) opens on the leaderboard stage's answer: the Answer to both
# research questions, the methods table and the plots; the plots and the per-run CSV are its results.
report: "metrics/answer.rst"

# `snakemake --report` reports on results that exist; before the DAG has run there are none, and Snakemake would
# print a "Missing metadata ... older version of Snakemake" warning per leaderboard output and then a
# WorkflowError. Say what to do instead, in one line. (Only the command line tells: the report is made after
# the Snakefile is read. --report-after-run runs the DAG first, so it passes.)
if workflow.is_main_process and any(a == "--report" or a.startswith("--report=") for a in sys.argv):
    from gsm8k_pipeline import STAGES as _STAGES

    if _missing := [f for f in _STAGES["leaderboard"].outputs.values() if not Path(f).exists()]:
        sys.exit(f"snakemake: error: no results to report yet ({_missing[0]} is missing): run the DAG first "
                 "(snakemake --cores N), then snakemake --report report.html")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/leaderboard.smk"


rule all:
    default_target: True
    input:
        rules.leaderboard.output,
