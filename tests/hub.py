"""The hub-shaped stand-in model (tests/support/hub_fixture.py), built at test time at tiny size."""

from __future__ import annotations

from pathlib import Path

from gsm8k_pipeline.synthetic import generate_splits
from support import hub_fixture


def build(dest: Path, pad: bool = True) -> Path:
    train, _ = generate_splits(300, 10, 0)
    return hub_fixture.save(dest, train, hub_fixture.TINY, pad=pad, vocab_size=600, seed=0)
