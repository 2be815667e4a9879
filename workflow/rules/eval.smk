# Where each evaluated model id's weights live.
MODEL_DIRS = {"base": rules.base_model.output[0]}


rule eval:
    input:
        model=lambda w: MODEL_DIRS[w.model],
        test=rules.download.output.test,
        code=code("evaluate", "generation", "grader", "formatting"),
    output:
        metrics="metrics/eval/{model}.json",
        debug="metrics/eval/{model}/debug.csv",
        summary="metrics/eval/{model}/summary.txt",
    wildcard_constraints:
        model="|".join(MODEL_DIRS),
    params:
        seed=config["seed"],
        prompt=config["prompt"],
        eval=config["eval"],
    log:
        "logs/eval/{model}.log",
    shell:
        "gsm8k evaluate --params {PARAMS_FILE} --model-path {input.model}/model "
        "--output-dir metrics/eval --output-file {wildcards.model}.json > {log} 2>&1"
