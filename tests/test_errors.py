"""Every user-fixable failure of a stage command is one line, `gsm8k <cmd>: error: …`, naming the file,
line, key or variable at fault — never a traceback. Real `gsm8k` commands on test-sized inputs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import test_params


def gsm8k(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["gsm8k", *args], cwd=cwd, capture_output=True, text=True, env=os.environ | (env or {}))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with params.yaml and downloaded synthetic data."""
    root = tmp_path_factory.mktemp("errors")
    (root / "params.yaml").write_text(yaml.safe_dump(test_params()))
    assert gsm8k(root, "download").returncode == 0
    (root / "traces.jsonl").write_text('{"question": "q?", "completion": "c"}\n{"question": "q2?"}\n')
    (root / "latin1.jsonl").write_bytes(b'{"question": "caf\xe9", "answer": "1 #### 1"}\n')
    bad = test_params(data={"synthetic": {"min_steps": 4, "max_steps": 2}})
    (root / "bad-steps.yaml").write_text(yaml.safe_dump(bad))
    return root


CASES = {
    "missing model": (
        ["evaluate", "--model-path", "models/nope/model"],
        {},
        "models/nope/model: no such model directory",
    ),
    "missing start model": (
        ["train-sft", "--stage", "prep", "--base-model", "nope"],
        {},
        "nope: no such model directory",
    ),
    "bad env var": (
        ["evaluate"],
        {"EVAL_SAMPLES": "many"},
        "eval.samples: 'many' is not of type 'integer', 'null' (set by environment variable EVAL_SAMPLES)",
    ),
    "bad trace row": (
        ["train-sft", "--stage", "full", "--base-model", "data", "--traces-file", "traces.jsonl"],
        {},
        "traces.jsonl:2: 'completion' must be a non-empty string",
    ),
    "non-UTF-8 data": (["evaluate", "--test-file", "latin1.jsonl"], {}, "latin1.jsonl:1: not UTF-8"),
    "missing data": (
        ["train-grpo", "--train-file", "nope.jsonl", "--base-model", "data"],
        {},
        "nope.jsonl: no such file",
    ),
    "steps the schema allows one by one": (
        ["download", "--params", "bad-steps.yaml"],
        {},
        "data.synthetic.min_steps (4) is greater than data.synthetic.max_steps (2)",
    ),
    "leaderboard before evals": (["leaderboard"], {}, "no eval metrics for"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_line_error_naming_the_culprit(workdir, case):
    args, env, message = CASES[case]
    proc = gsm8k(workdir, *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"gsm8k {args[0]}: error: "), proc.stderr
    assert message in lines[0]
