# Every model is evaluated the same way. Model ids: base, prep_sft, and <method>_<budget>.
EVAL_INPUT = dict(test=rules.download.output.test, code=code("evaluate", "generation", "grader", "formatting"))
EVAL_PARAMS = dict(seed=config["seed"], threads=config["threads"], precision=config["precision"], prompt=config["prompt"],
                   eval=config["eval"])
EVAL_CMD = (
    "gsm8k evaluate --params {PARAMS_FILE} --model-path {input.model} "
    "--output-dir metrics/eval --output-file {wildcards.model}.json > {log} 2>&1"
)
UNBUDGETED = {"base": rules.base_model.output.model, "prep_sft": rules.prep_sft.output.model}
BUDGETED = {
    "full_sft": rules.full_sft.output.model,
    "grpo": rules.grpo.output.model,
    "sft_traces": rules.sft_from_traces.output.model,
}


rule eval:
    input:
        model=lambda w: UNBUDGETED[w.model],
        **EVAL_INPUT,
    output:
        metrics="metrics/eval/{model}.json",
        debug="metrics/eval/{model}/debug.csv",
        summary="metrics/eval/{model}/summary.txt",
    wildcard_constraints:
        model="|".join(UNBUDGETED),
    params:
        **EVAL_PARAMS,
    threads: config["threads"]
    log:
        "logs/eval/{model}.log",
    shell:
        EVAL_CMD


rule eval_budget:
    input:
        model=lambda w: BUDGETED[w.method].format(budget=w.budget),
        **EVAL_INPUT,
    output:
        metrics="metrics/eval/{method}_{budget}.json",
        debug="metrics/eval/{method}_{budget}/debug.csv",
        summary="metrics/eval/{method}_{budget}/summary.txt",
    wildcard_constraints:
        method="|".join(BUDGETED),
        budget=r"\d+",
    params:
        **EVAL_PARAMS,
    threads: config["threads"]
    log:
        "logs/eval/{method}_{budget}.log",
    shell:
        EVAL_CMD.replace("{wildcards.model}", "{wildcards.method}_{wildcards.budget}")
