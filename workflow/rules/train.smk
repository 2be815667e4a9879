# Training stages. Each writes models/<stage>[/<budget>/s<seed>]/{model/,train_log.csv}; its checkpoints/
# beside them are deliberately not outputs, so a killed job's checkpoints survive --rerun-incomplete and are
# resumed. Stages after prep_sft run once per (budget, seed): `seeds` in params.yaml, passed as --seed, at the
# learning rate their method's selection on validation chose (tune.smk). The tuning seed's run at that rate
# was already trained, as a candidate: --candidates copies it (training.reuse) rather than train it twice.


rule prep_sft:
    input:
        model=rules.base_model.output.model,
        train=rules.download.output.train,
        checked=CHECKED,
        code=code("train-sft"),
        intact=remake_if_gutted(STAGES["prep_sft"].outputs["model"]),
    output:
        **outputs("prep_sft"),
    params:
        **stage_params("prep_sft"),
    threads: config["prep_sft"].get("threads") or config["threads"]
    priority: GATE
    resources: **resources_for("train")
    log:
        "logs/prep_sft.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage prep --model {input.model} "
        "--output-dir models/prep_sft > {log} 2>&1"


rule full_sft:
    input:
        model=rules.prep_sft.output.model,
        train=rules.download.output.train,
        checked=CHECKED,
        code=code("train-sft"),
        intact=remake_if_gutted(STAGES["full_sft"].outputs["model"]),
        selection=ancient(STAGES["select_full_sft"].outputs["selection"]),  # its time is not compared: see chosen_rate
    output:
        **outputs("full_sft"),
    params:
        **stage_params("full_sft"),
        chosen=chosen_rate("full_sft"),  # the learning rate chosen on validation: a moved choice reruns the run
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("train")
    log:
        "logs/full_sft/{budget}/s{seed}.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage full --model {input.model} --seed {wildcards.seed} "
        "--samples {wildcards.budget} --learning-rate-from {input.selection} --candidates models/tune_full_sft/{wildcards.budget} --output-dir models/full_sft/{wildcards.budget}/s{wildcards.seed} > {log} 2>&1"


rule grpo:
    input:
        model=rules.prep_sft.output.model,
        train=rules.download.output.train,
        checked=CHECKED,
        code=code("train-grpo"),
        intact=remake_if_gutted(STAGES["grpo"].outputs["model"]),
        selection=ancient(STAGES["select_grpo"].outputs["selection"]),  # its time is not compared: see chosen_rate
    output:
        **outputs("grpo"),
    params:
        **stage_params("grpo"),
        chosen=chosen_rate("grpo"),  # the learning rate chosen on validation: a moved choice reruns the run
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("train")
    log:
        "logs/grpo/{budget}/s{seed}.log",
    shell:
        "gsm8k train-grpo --params {PARAMS_FILE} --model {input.model} --seed {wildcards.seed} "
        "--samples {wildcards.budget} --learning-rate-from {input.selection} --candidates models/tune_grpo/{wildcards.budget} --output-dir models/grpo/{wildcards.budget}/s{wildcards.seed} > {log} 2>&1"


rule traces:
    input:
        model=rules.grpo.output.model,
        train=rules.download.output.train,
        checked=CHECKED,
        code=code("generate-traces"),
    output:
        **outputs("traces"),
    params:
        **stage_params("traces"),
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("generate")
    log:
        "logs/traces/{budget}/s{seed}.log",
    shell:
        "gsm8k generate-traces --params {PARAMS_FILE} --model {input.model} --seed {wildcards.seed} "
        "--output {output.traces} --samples {wildcards.budget} > {log} 2>&1"


rule sft_from_traces:
    input:
        model=rules.prep_sft.output.model,
        traces=rules.traces.output.traces,
        checked=CHECKED,
        code=code("train-sft"),
        intact=remake_if_gutted(STAGES["sft_from_traces"].outputs["model"]),
        selection=ancient(STAGES["select_sft_from_traces"].outputs["selection"]),  # its time is not compared: see chosen_rate
    output:
        **outputs("sft_from_traces"),
    params:
        **stage_params("sft_from_traces"),
        chosen=chosen_rate("sft_from_traces"),  # the learning rate chosen on validation: a moved choice reruns the run
    threads: config["threads"]
    priority: GATE
    resources: **resources_for("train")
    log:
        "logs/sft_from_traces/{budget}/s{seed}.log",
    shell:
        "gsm8k train-sft --params {PARAMS_FILE} --stage full --model {input.model} --seed {wildcards.seed} "
        "--traces-file {input.traces} --learning-rate-from {input.selection} --candidates models/tune_sft_from_traces/{wildcards.budget} --output-dir models/sft_from_traces/{wildcards.budget}/s{wildcards.seed} "
        "> {log} 2>&1"
