"""Snakefile and dvc.yaml describe the same DAG: same jobs, same inputs, same outputs."""

import pytest

from conftest import REPO, make_checkout, test_params
from engines import dvc_stages, snakemake_jobs


def assert_same_dag(repo):
    smk, dvc = snakemake_jobs(repo), dvc_stages(repo)
    assert sorted(smk) == sorted(dvc)
    for name in smk:
        assert smk[name] == dvc[name], name
    return smk


def test_shipped_dag_is_the_same_in_both_engines():
    jobs = assert_same_dag(REPO)
    assert {"download", "base_model", "prep_sft", "eval@base", "eval@prep_sft"} <= set(jobs)


@pytest.mark.parametrize("budgets", [[3], [8, 16, 32]])
def test_budgets_expand_the_same_way(tmp_path, budgets):
    repo = make_checkout(tmp_path / "repo", test_params(budgets=budgets))
    jobs = assert_same_dag(repo)
    for b in budgets:
        assert {f"full_sft@{b}", f"grpo@{b}", f"eval_budget@full_sft-{b}", f"eval_budget@grpo-{b}"} <= set(jobs)
