rule download:
    input:
        checked=CHECKED,
        code=code("download"),
    output:
        **outputs("download"),
    params:
        **stage_params("download"),
    log:
        "logs/download.log",
    shell:
        "gsm8k download --params {PARAMS_FILE} > {log} 2>&1"
