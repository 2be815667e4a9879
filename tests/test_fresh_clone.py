"""A fresh clone reads clean (issue 21, part 2): what `dvc plots show` and `snakemake --report` write is
ignored by git, and `snakemake --report` before any run says, in one line, to run the DAG first."""

from __future__ import annotations

import subprocess

from conftest import REPO, make_checkout, run, test_params


def test_generated_reports_are_ignored():
    proc = subprocess.run(
        ["git", "check-ignore", "dvc_plots/index.html", "report.html"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.stdout.split() == ["dvc_plots/index.html", "report.html"]


def test_report_before_a_run_says_run_the_dag_first(tmp_path):
    repo = make_checkout(tmp_path / "repo", test_params())
    proc = run(["snakemake", "--report", "report.html"], repo, check=False)
    assert proc.returncode != 0 and not (repo / "report.html").exists()
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "snakemake: error: no results to report yet (metrics/all.json is missing): run the DAG first "
        "(snakemake --cores N), then snakemake --report report.html"
    ]
    assert "Missing metadata" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
