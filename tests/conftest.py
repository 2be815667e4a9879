"""Shared fixtures: the repo root, real GSM8K when present, and test-sized params (tests/support/checkout.py,
which the benches import too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.checkout import REPO, SHARED_GSM8K, make_checkout, outputs, run, test_params  # noqa: F401  (the tests import these from here)


@pytest.fixture
def shared_gsm8k() -> Path:
    if not (SHARED_GSM8K / "train.jsonl").exists():
        pytest.skip("real GSM8K not present at ../shared/data/gsm8k")
    return SHARED_GSM8K
