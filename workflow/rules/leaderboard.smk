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
        checked=CHECKED,
        code=code("leaderboard"),
    output:
        all="metrics/all.json",
        leaderboard="metrics/LEADERBOARD.md",
        curve=report("metrics/accuracy_vs_budget.csv", caption="../report/curve.rst", category="Results"),
        png=report("metrics/accuracy_vs_budget.png", caption="../report/accuracy.rst", category="Results"),
        rewards=report("metrics/grpo_reward.png", caption="../report/rewards.rst", category="Results"),
        # `snakemake --report` opens on this: the Answer, the methods table and the plots (Snakefile).
        answer="metrics/answer.rst",
        timings="metrics/timings.json",  # what the boosters cost: the wall-clock figures, kept apart
    params:
        **stage_params("leaderboard"),
    log:
        "logs/leaderboard.log",
    shell:
        "gsm8k leaderboard --params {PARAMS_FILE} > {log} 2>&1"
