# Learning-rate selection on the validation split (issue 22), per method: tune_<method> trains one candidate
# per rate of the method's grid (params full_sft.learning_rates, grpo.learning_rates; sft_from_traces uses
# full_sft's) at the first seed; tune_eval_<method> scores it greedy on data/gsm8k/validation.jsonl, never on
# test; select_<method> chooses the rate that full_sft, grpo and sft_from_traces then train every seed with
# (train.smk: --learning-rate-from). Selections are checkpoints, so that the final runs can take the chosen
# rate as a param once it is made (common.smk: chosen_rate). Rules per method, as dvc.yaml's stages: each grid is its own section's.
# Written out, not made in a loop: a rule's shell command is evaluated when its job runs, so a loop variable
# in it would hold the last method for every rule.
# A rate appears in paths and commands as Python writes the float (str(0.0003) == "0.0003"), which is how
# DVC renders it too, so both engines name the same files.
SEED0 = config["seeds"][0]  # the tuning seed
RATE = gsm8k_pipeline.RATE  # a rate as Python writes a float
# sft_from_traces' candidates train on the traces of the final grpo run of the tuning seed.
TUNE_TRACES = STAGES["traces"].outputs["traces"].replace("{seed}", str(SEED0))


def _candidates(method):
    """select_<method>'s inputs: every file its candidates' evals wrote in metrics/tune/<method>_<budget>/,
    the folder dvc.yaml declares (its deps can't list a grid's files)."""
    grid = config[gsm8k_pipeline.section_of(method)]["learning_rates"]
    outs = STAGES[f"tune_eval_{method}"].outputs
    return lambda w: [path.format(budget=w.budget, lr=lr) for path in outs.values() for lr in grid]


rule tune_full_sft:
    input:
        model=rules.prep_sft.output.model,
        train=rules.download.output.train,
        checked=CHECKED,
        code=code("train-sft"),
        intact=remake_if_gutted(STAGES["tune_full_sft"].outputs["model"]),
    output:
        **outputs("tune_full_sft"),
    params:
        **stage_params("tune_full_sft"),
    wildcard_constraints:
        lr=RATE,
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("train")
    log:
        "logs/tune_full_sft/{budget}/lr{lr}.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage full --model {input.model} --seed {SEED0} "
        "--samples {wildcards.budget} --learning-rate {wildcards.lr} --output-dir models/tune_full_sft/{wildcards.budget}/lr{wildcards.lr} > {log} 2>&1"


rule tune_eval_full_sft:
    input:
        model=STAGES["tune_full_sft"].outputs["model"],
        validation=rules.download.output.validation,  # and not the test split: choices are made on validation
        checked=CHECKED,
        code=code("evaluate"),
    output:
        **outputs("tune_eval_full_sft"),
    params:
        **stage_params("tune_eval_full_sft"),
    wildcard_constraints:
        lr=RATE,
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("eval")
    log:
        "logs/tune_eval_full_sft/{budget}/lr{lr}.log",
    shell:
        "gsm8k evaluate --params {PARAMS_FILE} --test-file {input.validation} --model {input.model} "
        "--output {output.metrics} > {log} 2>&1"


checkpoint select_full_sft:
    input:
        candidates=_candidates("full_sft"),
        checked=CHECKED,
        code=code("select"),
    output:
        **outputs("select_full_sft"),
    params:
        **stage_params("select_full_sft"),
    localrule: True  # a second of json: never worth a cluster job
    priority: GATE
    log:
        "logs/select_full_sft/{budget}.log",
    shell:
        "gsm8k select --params {PARAMS_FILE} --method full_sft --budget {wildcards.budget} > {log} 2>&1"


rule tune_grpo:
    input:
        model=rules.prep_sft.output.model,
        train=rules.download.output.train,
        checked=CHECKED,
        code=code("train-grpo"),
        intact=remake_if_gutted(STAGES["tune_grpo"].outputs["model"]),
    output:
        **outputs("tune_grpo"),
    params:
        **stage_params("tune_grpo"),
    wildcard_constraints:
        lr=RATE,
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("train")
    log:
        "logs/tune_grpo/{budget}/lr{lr}.log",
    shell:
        "gsm8k train-grpo --params {PARAMS_FILE} --model {input.model} --seed {SEED0} "
        "--samples {wildcards.budget} --learning-rate {wildcards.lr} --output-dir models/tune_grpo/{wildcards.budget}/lr{wildcards.lr} > {log} 2>&1"


rule tune_eval_grpo:
    input:
        model=STAGES["tune_grpo"].outputs["model"],
        validation=rules.download.output.validation,  # and not the test split: choices are made on validation
        checked=CHECKED,
        code=code("evaluate"),
    output:
        **outputs("tune_eval_grpo"),
    params:
        **stage_params("tune_eval_grpo"),
    wildcard_constraints:
        lr=RATE,
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("eval")
    log:
        "logs/tune_eval_grpo/{budget}/lr{lr}.log",
    shell:
        "gsm8k evaluate --params {PARAMS_FILE} --test-file {input.validation} --model {input.model} "
        "--output {output.metrics} > {log} 2>&1"


checkpoint select_grpo:
    input:
        candidates=_candidates("grpo"),
        checked=CHECKED,
        code=code("select"),
    output:
        **outputs("select_grpo"),
    params:
        **stage_params("select_grpo"),
    localrule: True  # a second of json: never worth a cluster job
    priority: GATE
    log:
        "logs/select_grpo/{budget}.log",
    shell:
        "gsm8k select --params {PARAMS_FILE} --method grpo --budget {wildcards.budget} > {log} 2>&1"


rule tune_sft_from_traces:
    input:
        model=rules.prep_sft.output.model,
        traces=TUNE_TRACES,
        checked=CHECKED,
        code=code("train-sft"),
        intact=remake_if_gutted(STAGES["tune_sft_from_traces"].outputs["model"]),
    output:
        **outputs("tune_sft_from_traces"),
    params:
        **stage_params("tune_sft_from_traces"),
    wildcard_constraints:
        lr=RATE,
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("train")
    log:
        "logs/tune_sft_from_traces/{budget}/lr{lr}.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage full --model {input.model} --seed {SEED0} "
        "--traces-file {input.traces} --learning-rate {wildcards.lr} --output-dir models/tune_sft_from_traces/{wildcards.budget}/lr{wildcards.lr} > {log} 2>&1"


rule tune_eval_sft_from_traces:
    input:
        model=STAGES["tune_sft_from_traces"].outputs["model"],
        validation=rules.download.output.validation,  # and not the test split: choices are made on validation
        checked=CHECKED,
        code=code("evaluate"),
    output:
        **outputs("tune_eval_sft_from_traces"),
    params:
        **stage_params("tune_eval_sft_from_traces"),
    wildcard_constraints:
        lr=RATE,
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("eval")
    log:
        "logs/tune_eval_sft_from_traces/{budget}/lr{lr}.log",
    shell:
        "gsm8k evaluate --params {PARAMS_FILE} --test-file {input.validation} --model {input.model} "
        "--output {output.metrics} > {log} 2>&1"


checkpoint select_sft_from_traces:
    input:
        candidates=_candidates("sft_from_traces"),
        checked=CHECKED,
        code=code("select"),
    output:
        **outputs("select_sft_from_traces"),
    params:
        **stage_params("select_sft_from_traces"),
    localrule: True  # a second of json: never worth a cluster job
    priority: GATE
    log:
        "logs/select_sft_from_traces/{budget}.log",
    shell:
        "gsm8k select --params {PARAMS_FILE} --method sft_from_traces --budget {wildcards.budget} > {log} 2>&1"
