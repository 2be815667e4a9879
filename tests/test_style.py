"""The code stays as ruff (configured in pyproject.toml) wants it: formatted, and lint-clean."""

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]])
def test_ruff_is_clean(check):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *check, "src", "tests", "bench"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"`uv run ruff {' '.join(check)} src tests bench`:\n{proc.stdout}{proc.stderr}"
