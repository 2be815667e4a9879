rule base_model:
    input:
        train=rules.download.output.train,
        pretrained=str(base_model.PRETRAINED),  # where local model folders live
        checked=CHECKED,
        code=code("base-model"),
        intact=remake_if_gutted(STAGES["base_model"].outputs["model"]),  # no input: remakes a gutted output (common.smk)
    output:
        **outputs("base_model"),
    params:
        **stage_params("base_model"),
        **{dag.CONTENT_PARAM: base_model_content()},
    threads: config["threads"]
    log:
        "logs/base_model.log",
    shell:
        "gsm8k base-model --params {PARAMS_FILE} > {log} 2>&1"
