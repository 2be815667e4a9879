"""A params sweep with DVC's experiment queue, offline, as docs/sharing.md's *Sweeps with DVC* runs it: queue
one experiment per value with `dvc exp run --queue -S key=value`, run them with `dvc queue start -j 2`,
compare with `dvc exp show`. On a reduced target (eval@base: download, base_model, one eval) to keep it
short; 1.5-2.5 min on 2 shared cores."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from conftest import make_checkout, run, test_params

pytestmark = pytest.mark.slow

VALUES = (8, 16)


def test_queued_sweep_runs_each_value_and_exp_show_compares_them(tmp_path):
    repo = make_checkout(tmp_path / "repo", test_params())
    for n in VALUES:
        run(["dvc", "exp", "run", "--queue", "-S", f"eval.max_new_tokens={n}", "-n", f"tok{n}", "eval@base"], repo)
    try:
        # The workers it starts outlive it and keep its stdout: to a file, or reading it would wait for them.
        with open(tmp_path / "queue-start.log", "w") as log:
            subprocess.run(
                ["dvc", "queue", "start", "-j", "2"],
                cwd=repo,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=True,
            )
        deadline = time.monotonic() + 600
        while True:
            status = run(["dvc", "queue", "status"], repo, timeout=60).stdout
            if not any(s in status for s in ("Queued", "Running")):
                break
            assert time.monotonic() < deadline, f"sweep still running after 10 min:\n{status}"
            time.sleep(3)
    finally:
        run(["dvc", "queue", "stop"], repo, check=False, timeout=60)
    assert status.count("Success") == len(VALUES), status

    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo, timeout=120).stdout)
    exps = {r["name"]: r["data"] for e in shown[1]["experiments"] for r in e["revs"]}
    assert set(exps) == {f"tok{n}" for n in VALUES}
    for n in VALUES:
        data = exps[f"tok{n}"]
        assert data["params"]["params.yaml"]["data"]["eval"]["max_new_tokens"] == n
        metrics = data["metrics"]["metrics/eval/base.json"]["data"]
        assert metrics["generation"]["max_new_tokens"] == n and metrics["n"] == 12
    # The experiments live in git refs; the workspace and its params.yaml are untouched.
    assert run(["git", "status", "--porcelain"], repo).stdout == ""
