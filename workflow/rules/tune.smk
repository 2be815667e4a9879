# Learning-rate selection on the validation split (issue 22), per method: tune_<method> trains one candidate
# per rate of the method's grid (params full_sft.learning_rates, grpo.learning_rates; sft_from_traces uses
# full_sft's) at the first seed; tune_eval_<method> scores it greedy on data/gsm8k/validation.jsonl, never on
# test; select_<method> chooses the rate that full_sft, grpo and sft_from_traces then train every seed with
# (train.smk: --learning-rate-from). Rules per method, as dvc.yaml's stages: each grid is its own section's.
# A rate appears in paths and commands as Python writes the float (str(0.0003) == "0.0003"), which is how
# DVC renders it too, so both engines name the same files.
SEED0 = config["seeds"][0]  # the tuning seed
# sft_from_traces' candidates train on the traces of the final grpo run of the tuning seed.
TUNE_TRACES = STAGES["traces"].outputs["traces"].replace("{seed}", str(SEED0))


def _tune_shell(method):
    folder = f"models/tune/{method}/{{wildcards.budget}}/lr{{wildcards.lr}}"
    rate = "--learning-rate {wildcards.lr}"
    if method == "grpo":
        return (f"gsm8k train-grpo --params {{PARAMS_FILE}} --model {{input.model}} --seed {SEED0} "
                f"--samples {{wildcards.budget}} {rate} --output-dir {folder} > {{log}} 2>&1")
    data = "--traces-file {input.traces}" if method == "sft_from_traces" else "--samples {wildcards.budget}"
    return (f"gsm8k train-sft --params {{PARAMS_FILE}} --stage full --model {{input.model}} --seed {SEED0} "
            f"{data} {rate} --output-dir {folder} > {{log}} 2>&1")


def _candidates(method):
    """select_<method>'s inputs: every file its candidates' evals wrote in metrics/tune/<method>_<budget>/,
    the folder dvc.yaml declares (its deps can't list a grid's files)."""
    grid = config[gsm8k_pipeline.section_of(method)]["learning_rates"]
    outs = STAGES[f"tune_eval_{method}"].outputs
    return lambda w: [path.format(budget=w.budget, lr=lr) for path in outs.values() for lr in grid]


for _method in METHODS:
    rule:
        name: f"tune_{_method}"
        input:
            model=rules.prep_sft.output.model,
            **({"traces": TUNE_TRACES} if _method == "sft_from_traces" else {"train": rules.download.output.train}),
            checked=CHECKED,
            code=code(STAGES[f"tune_{_method}"].command),
            intact=remake_if_gutted(STAGES[f"tune_{_method}"].outputs["model"]),
        output:
            **outputs(f"tune_{_method}"),
        params:
            **stage_params(f"tune_{_method}"),
        wildcard_constraints:
            lr=r"[0-9][0-9.e+-]*",
        threads: config["threads"]
        resources: **resources_for("train")
        log:
            f"logs/tune_{_method}/{{budget}}/lr{{lr}}.log",
        shell:
            _tune_shell(_method)

    rule:
        name: f"tune_eval_{_method}"
        input:
            model=STAGES[f"tune_{_method}"].outputs["model"],
            validation=rules.download.output.validation,  # and not the test split: choices are made on validation
            checked=CHECKED,
            code=code("evaluate"),
        output:
            **outputs(f"tune_eval_{_method}"),
        params:
            **stage_params(f"tune_eval_{_method}"),
        wildcard_constraints:
            lr=r"[0-9][0-9.e+-]*",
        threads: config["threads"]
        resources: **resources_for("eval")
        log:
            f"logs/tune_eval_{_method}/{{budget}}/lr{{lr}}.log",
        shell:
            "gsm8k evaluate --params {PARAMS_FILE} --test-file {input.validation} --model {input.model} "
            "--output {output.metrics} > {log} 2>&1"

    rule:
        name: f"select_{_method}"
        localrule: True  # a second of json: never worth a cluster job
        input:
            candidates=_candidates(_method),
            checked=CHECKED,
            code=code("select"),
        output:
            **outputs(f"select_{_method}"),
        params:
            **stage_params(f"select_{_method}"),
        log:
            f"logs/select_{_method}/{{budget}}.log",
        shell:
            f"gsm8k select --params {{PARAMS_FILE}} --method {_method} --budget {{wildcards.budget}} > {{log}} 2>&1"
