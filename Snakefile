# gsm8k-pipeline — the Snakemake side of the DAG (dvc.yaml is the other; tests/test_parity.py keeps them equal).
# Every knob lives in params.yaml; edit it, then rerun: only stale jobs run.
from snakemake.utils import min_version

min_version("9.0")

# Validated by common.smk: duplicate keys first (Snakemake's loader accepts them), then the schema.
configfile: "params.yaml"


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
