rule leaderboard:
    input:
        # dvc.yaml depends on the metrics/eval directory, i.e. on everything the eval stages write there.
        metrics=expand(rules.eval.output.metrics, model=UNBUDGETED)
        + expand(rules.eval_budget.output.metrics, method=BUDGETED, budget=config["budgets"]),
        debug=expand(rules.eval.output.debug, model=UNBUDGETED)
        + expand(rules.eval_budget.output.debug, method=BUDGETED, budget=config["budgets"]),
        summary=expand(rules.eval.output.summary, model=UNBUDGETED)
        + expand(rules.eval_budget.output.summary, method=BUDGETED, budget=config["budgets"]),
        code=code("leaderboard"),
    output:
        all="metrics/all.json",
        leaderboard="metrics/LEADERBOARD.md",
        curve="metrics/accuracy_vs_budget.csv",
        png="metrics/accuracy_vs_budget.png",
    params:
        params=RESULT_CONFIG,
    log:
        "logs/leaderboard.log",
    shell:
        "gsm8k leaderboard --params {PARAMS_FILE} > {log} 2>&1"
