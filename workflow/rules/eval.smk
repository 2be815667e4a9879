# Every model is evaluated the same way. Model ids: base, prep_sft, and <method>_<budget>_s<seed>.
UNBUDGETED = {"base": rules.base_model.output.model, "prep_sft": rules.prep_sft.output.model}
BUDGETED = {method: getattr(rules, method).output.model for method in METHODS}


rule eval:
    input:
        model=lambda w: UNBUDGETED[w.model],
        test=rules.download.output.test,
        stats=rules.download.output.stats,  # the contamination count every eval records
        train=rules.download.output.train,  # lm-eval's few-shot examples (params lm_eval)
        checked=CHECKED,
        code=code("evaluate"),
    output:
        **outputs("eval"),  # timings.json: the passes' seconds, kept out of the results (timings.py)
    wildcard_constraints:
        model="|".join(UNBUDGETED),
    params:
        **stage_params("eval"),
    threads: config["threads"]
    priority: lambda w: eval_priority(w.model)
    resources: **resources_for("eval")
    log:
        "logs/eval/{model}.log",
    shell:
        "gsm8k evaluate --params {PARAMS_FILE} --model {input.model} --output {output.metrics} > {log} 2>&1"


rule eval_budget:
    input:
        model=lambda w: BUDGETED[w.method].format(budget=w.budget, seed=w.seed),
        test=rules.download.output.test,
        stats=rules.download.output.stats,  # the contamination count every eval records
        train=rules.download.output.train,  # lm-eval's few-shot examples (params lm_eval)
        checked=CHECKED,
        code=code("evaluate"),
    output:
        **outputs("eval_budget"),
    wildcard_constraints:
        method="|".join(BUDGETED),
    params:
        **stage_params("eval_budget"),
    threads: config["threads"]
    priority: lambda w: eval_priority(str(RunId(w.method, int(w.budget), int(w.seed))))
    resources: **resources_for("eval")
    log:
        "logs/eval/{method}_{budget}_s{seed}.log",
    shell:
        "gsm8k evaluate --params {PARAMS_FILE} --seed {wildcards.seed} --model {input.model} "
        "--output {output.metrics} > {log} 2>&1"
