"""Snakefile and dvc.yaml describe the same DAG: same jobs, inputs, outputs, params and commands — each
engine asked itself (Snakemake's API, DVC's stage index) — and every stage's code inputs are exactly the
files its command executes (dag.code_deps, the import closure)."""

import pytest
import yaml

from conftest import REPO, make_checkout, test_params
from engines import dvc_stages, snakemake_jobs
from gsm8k_pipeline import STAGES, dag


def assert_same_dag(repo):
    smk, dvc = snakemake_jobs(repo), dvc_stages(repo)
    assert sorted(smk) == sorted(dvc)
    for name in smk:
        for field in ("inputs", "outputs", "params", "cmd"):
            assert smk[name][field] == dvc[name][field], (name, field)
    return smk


def test_shipped_dag_is_the_same_in_both_engines():
    jobs = assert_same_dag(REPO)
    assert {"download", "base_model", "prep_sft", "eval@base", "eval@prep_sft"} <= set(jobs)
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    grpo = f"grpo@{shipped['budgets'][0]}-{shipped['seeds'][0]}"
    # A final run tracks every key of its section but the grid: it trains at the rate its selection chose.
    grpo_keys = {f"grpo.{k}" for k in shipped["grpo"] if k != "learning_rates"}
    assert jobs[grpo]["params"] == {"seed", "threads", "precision", "prompt", "lora", "train", *grpo_keys}
    assert f"metrics/select/grpo_{shipped['budgets'][0]}.json" in jobs[grpo]["inputs"]
    # A validation eval tracks what scores greedy on validation, not the test split's cap, boosters or lm-eval.
    tune_eval = next(job for name, job in jobs.items() if name.startswith("tune_eval_grpo@"))
    assert {"eval.max_new_tokens", "eval.batch_size"} <= tune_eval["params"]
    assert not {"eval.samples", "eval.boosters", "eval", "lm_eval"} & tune_eval["params"]
    assert jobs[f"select_grpo@{shipped['budgets'][0]}"]["params"] == {"grpo.learning_rates"}


@pytest.mark.parametrize("budgets, seeds", [([3], [0]), ([8, 16, 32], [0, 1, 2])])
def test_budgets_and_seeds_expand_the_same_way(tmp_path, budgets, seeds):
    repo = make_checkout(tmp_path / "repo", test_params(budgets=budgets, seeds=seeds))
    jobs = assert_same_dag(repo)
    for b in budgets:
        for s in seeds:
            assert {
                f"full_sft@{b}-{s}",
                f"grpo@{b}-{s}",
                f"traces@{b}-{s}",
                f"sft_from_traces@{b}-{s}",
                f"eval_budget@full_sft-{b}-{s}",
                f"eval_budget@grpo-{b}-{s}",
                f"eval_budget@sft_from_traces-{b}-{s}",
            } <= set(jobs)
            assert f"--seed {s}" in jobs[f"grpo@{b}-{s}"]["cmd"]
    # 7 shared: check_params, download … prep_sft, their evals, leaderboard; per budget, each method's two
    # candidates (trained, scored on validation) and its selection.
    assert len(jobs) == 7 + 7 * len(budgets) * len(seeds) + 3 * (2 * 2 + 1) * len(budgets)
    for b in budgets:
        for method, grid in (("full_sft", ["0.001", "0.003"]), ("grpo", ["5e-05", "0.00015"])):
            for lr in grid:
                # one seed, the first, per candidate
                assert f"--seed {seeds[0]} " in jobs[f"tune_{method}@{b}-{lr}"]["cmd"]
                assert f"--learning-rate {lr} " in jobs[f"tune_{method}@{b}-{lr}"]["cmd"]
        assert f"data/traces/grpo_{b}_s{seeds[0]}.jsonl" in jobs[f"tune_sft_from_traces@{b}-0.001"]["inputs"]
        for s in seeds:
            assert f"metrics/select/grpo_{b}.json" in jobs[f"grpo@{b}-{s}"]["inputs"]


def test_tuning_reads_validation_never_test():
    """The learning rates are chosen on validation: no tune or select stage declares the test split, in
    either engine (Snakemake's jobs, DVC's stage index), and only validation is what the candidates are
    scored on."""
    smk, dvc = snakemake_jobs(REPO), dvc_stages(REPO)
    for jobs in (smk, dvc):
        tuning = {name: job for name, job in jobs.items() if name.startswith(("tune_", "select_"))}
        assert {name.split("@")[0] for name in tuning} == {
            f"{kind}_{m}" for kind in ("tune", "tune_eval", "select") for m in ("full_sft", "grpo", "sft_from_traces")
        }
        for name, job in tuning.items():
            assert "data/gsm8k/test.jsonl" not in job["inputs"], name
            if name.startswith("tune_eval_"):
                assert "data/gsm8k/validation.jsonl" in job["inputs"]
                assert "--test-file data/gsm8k/validation.jsonl" in job["cmd"]


def test_every_stage_declares_the_code_its_command_runs():
    """dvc.yaml's code deps, stage by stage, against the import closure of the command it runs (the
    Snakefile takes its lists from dag.code_deps directly). On failure: paste the printed list."""
    stages = dvc_stages(REPO)
    for name, stage in stages.items():
        command = stage["cmd"].split()[1]
        declared = {p for p in stage["inputs"] if p.startswith("src/")}
        expected = set(dag.code_deps(command, REPO))
        assert declared == expected, (
            f"dvc.yaml {name}: code deps should be {sorted(expected)}; "
            "`uv run python -m gsm8k_pipeline.dag` rewrites them"
        )


def test_code_deps_follow_imports(tmp_path):
    """The closure is read from the code: a new import in a stage module adds the imported file."""
    repo = make_checkout(tmp_path / "repo", test_params())
    before = set(dag.code_deps("leaderboard", repo))
    assert "src/gsm8k_pipeline/grader.py" not in before
    module = repo / "src/gsm8k_pipeline/leaderboard/__init__.py"
    module.write_text(module.read_text() + "\n\ndef _late():\n    from ..grader import grade  # noqa: F401\n")
    assert set(dag.code_deps("leaderboard", repo)) == before | {
        f"src/gsm8k_pipeline/{m}.py" for m in ("grader", "arithmetic", "task")
    }  # grader and its imports
    # Non-stage commands (grade, params, workspace...) are imported only when asked for: no stage depends on
    # them, nor on the planning code (dag.py) or another stage's command module.
    for command in {s.command for s in STAGES.values()}:
        deps = dag.code_deps(command, repo)
        assert not [p for p in deps if "workspace" in p or p.endswith(("/dag.py", "cli/grade.py", "cli/params.py"))]
        assert [p for p in deps if "/cli/" in p] == [
            "src/gsm8k_pipeline/cli/__init__.py",
            f"src/gsm8k_pipeline/cli/{command.replace('-', '_')}.py",
        ]


def test_every_stage_shares_at_most_four_files():
    """The files every stage imports (an edit to one reruns the whole DAG): docs/design.md lists them and why."""
    closures = [set(dag.code_deps(command, REPO)) for command in {s.command for s in STAGES.values()}]
    assert sorted(set.intersection(*closures)) == [
        "src/gsm8k_pipeline/__init__.py",
        "src/gsm8k_pipeline/cli/__init__.py",
        "src/gsm8k_pipeline/fileio.py",
        "src/gsm8k_pipeline/params.py",
    ]


def test_sync_puts_back_dropped_code_deps(tmp_path):
    repo = make_checkout(tmp_path / "repo", test_params())
    shipped = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(shipped.replace("      - src/gsm8k_pipeline/task.py\n", "", 1))
    assert dag.sync_dvc_yaml(repo / "dvc.yaml", repo) is True
    assert (repo / "dvc.yaml").read_text() == shipped
    assert dag.sync_dvc_yaml(repo / "dvc.yaml", repo) is False
