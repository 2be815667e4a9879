# Training stages. Each writes models/<stage>[/<budget>]/{model/,train_log.csv}; its checkpoints/ beside
# them are deliberately not outputs, so a killed job's checkpoints survive --rerun-incomplete and are resumed.
TRAIN_PARAMS = dict(seed=config["seed"], threads=config["threads"], precision=config["precision"], prompt=config["prompt"],
                    lora=config["lora"],
                    train=config["train"])


rule prep_sft:
    input:
        model=rules.base_model.output.model,
        train=rules.download.output.train,
        code=code("train_sft", "training", "formatting"),
    output:
        model=directory("models/prep_sft/model"),
        log="models/prep_sft/train_log.csv",
    params:
        **TRAIN_PARAMS,
        prep_sft=config["prep_sft"],
    threads: config["threads"]
    log:
        "logs/prep_sft.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage prep --base-model {input.model} "
        "--output-dir models/prep_sft > {log} 2>&1"


rule full_sft:
    input:
        model=rules.prep_sft.output.model,
        train=rules.download.output.train,
        code=code("train_sft", "training", "formatting"),
    output:
        model=directory("models/full_sft/{budget}/model"),
        log="models/full_sft/{budget}/train_log.csv",
    params:
        **TRAIN_PARAMS,
        full_sft=config["full_sft"],
    threads: config["threads"]
    log:
        "logs/full_sft/{budget}.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage full --base-model {input.model} "
        "--samples {wildcards.budget} --output-dir models/full_sft/{wildcards.budget} > {log} 2>&1"


rule grpo:
    input:
        model=rules.prep_sft.output.model,
        train=rules.download.output.train,
        code=code("train_grpo", "training", "rewards", "grader", "formatting"),
    output:
        model=directory("models/grpo/{budget}/model"),
        log="models/grpo/{budget}/train_log.csv",
    params:
        **TRAIN_PARAMS,
        grpo=config["grpo"],
    threads: config["threads"]
    log:
        "logs/grpo/{budget}.log",
    shell:
        "gsm8k train-grpo --params {PARAMS_FILE} --base-model {input.model} "
        "--samples {wildcards.budget} --output-dir models/grpo/{wildcards.budget} > {log} 2>&1"


rule traces:
    input:
        model=rules.grpo.output.model,
        train=rules.download.output.train,
        code=code("traces", "generation", "rewards", "grader", "formatting"),
    output:
        traces="data/traces/grpo_{budget}.jsonl",
        stats="data/traces/grpo_{budget}.jsonl.stats.json",
    params:
        seed=config["seed"],
        threads=config["threads"],
        precision=config["precision"],
        prompt=config["prompt"],
        traces=config["traces"],
    threads: config["threads"]
    log:
        "logs/traces/{budget}.log",
    shell:
        "gsm8k generate-traces --params {PARAMS_FILE} --grpo-model {input.model} --output-dir data/traces "
        "--output-file grpo_{wildcards.budget}.jsonl --num-samples {wildcards.budget} > {log} 2>&1"


rule sft_from_traces:
    input:
        model=rules.prep_sft.output.model,
        traces=rules.traces.output.traces,
        code=code("train_sft", "training", "formatting"),
    output:
        model=directory("models/sft_traces/{budget}/model"),
        log="models/sft_traces/{budget}/train_log.csv",
    params:
        **TRAIN_PARAMS,
        full_sft=config["full_sft"],
    threads: config["threads"]
    log:
        "logs/sft_from_traces/{budget}.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage full --base-model {input.model} "
        "--traces-file {input.traces} --output-dir models/sft_traces/{wildcards.budget} > {log} 2>&1"
