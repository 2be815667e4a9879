rule base_model:
    input:
        train=rules.download.output.train,
        checked=CHECKED,
        code=code("base-model"),
    output:
        model=directory("models/base/model"),
        info="models/base/info.json",
    params:
        **stage_params("base_model"),
    threads: config["threads"]
    log:
        "logs/base_model.log",
    shell:
        "gsm8k base-model --params {PARAMS_FILE} > {log} 2>&1"
