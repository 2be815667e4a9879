rule leaderboard:
    input:
        # dvc.yaml depends on the metrics/eval directory, i.e. on everything the eval stages write there.
        metrics=expand(rules.eval.output.metrics, model=UNBUDGETED)
        + expand(rules.eval_budget.output.metrics, method=BUDGETED, budget=config["budgets"], seed=config["seeds"]),
        debug=expand(rules.eval.output.debug, model=UNBUDGETED)
        + expand(rules.eval_budget.output.debug, method=BUDGETED, budget=config["budgets"], seed=config["seeds"]),
        summary=expand(rules.eval.output.summary, model=UNBUDGETED)
        + expand(rules.eval_budget.output.summary, method=BUDGETED, budget=config["budgets"], seed=config["seeds"]),
        timings=expand(rules.eval.output.timings, model=UNBUDGETED)
        + expand(rules.eval_budget.output.timings, method=BUDGETED, budget=config["budgets"], seed=config["seeds"]),
        # GRPO's reward curves are plotted from its training logs (dvc.yaml: the models/grpo directory, so
        # everything the grpo jobs write there, their timings files included).
        grpo=expand(rules.grpo.output.model, budget=config["budgets"], seed=config["seeds"])
        + expand(rules.grpo.output.log, budget=config["budgets"], seed=config["seeds"])
        + expand(rules.grpo.output.timings, budget=config["budgets"], seed=config["seeds"]),
        # The learning rates chosen on validation (dvc.yaml: the metrics/select directory).
        selection=[path.format(budget=b) for m in METHODS for b in config["budgets"]
                   for path in [STAGES[f"select_{m}"].outputs["selection"]]],
        checked=CHECKED,
        code=code("leaderboard"),
    output:
        # The plots and the per-run CSV are results of `snakemake --report`; it opens on answer.rst (Snakefile).
        **outputs("leaderboard") | {
            "curve": report(STAGES["leaderboard"].outputs["curve"], caption="../report/curve.rst", category="Results"),
            "png": report(STAGES["leaderboard"].outputs["png"], caption="../report/accuracy.rst", category="Results"),
            "rewards": report(STAGES["leaderboard"].outputs["rewards"], caption="../report/rewards.rst",
                              category="Results"),
        },
    params:
        **stage_params("leaderboard"),
    log:
        "logs/leaderboard.log",
    shell:
        "gsm8k leaderboard --params {PARAMS_FILE} > {log} 2>&1"
