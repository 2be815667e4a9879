rule download:
    input:
        checked=CHECKED,
        code=code("download"),
    output:
        train="data/gsm8k/train.jsonl",
        test="data/gsm8k/test.jsonl",
        stats="data/gsm8k/stats.json",
    params:
        **stage_params("download"),
    log:
        "logs/download.log",
    shell:
        "gsm8k download --params {PARAMS_FILE} > {log} 2>&1"
