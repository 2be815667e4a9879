"""Precision this machine can't run is a one-line error naming the key, from every model-running command."""

import os
import subprocess

import pytest
import yaml

from conftest import test_params

NO_GPU = os.environ | {"CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.parametrize(
    "command, precision",
    [
        (["evaluate", "--model-path", "models/base/model"], "bf16"),
        (["evaluate", "--model-path", "models/base/model"], "fp16"),
        (["train-sft", "--stage", "prep", "--base-model", "models/base/model"], "bf16"),
        (["train-grpo", "--base-model", "models/base/model"], "bf16"),
        (["generate-traces", "--grpo-model", "models/grpo/model"], "bf16"),
    ],
)
def test_half_precision_without_a_gpu_is_a_one_line_error(tmp_path, shared_gsm8k, command, precision):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(test_params(precision=precision)))
    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    for split in ("train", "test"):
        (data / f"{split}.jsonl").write_text((shared_gsm8k / f"{split}.jsonl").read_text())
    proc = subprocess.run(
        ["gsm8k", command[0], "--params", "p.yaml", *command[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=NO_GPU,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"gsm8k {command[0]}: error: precision: {precision} needs a CUDA GPU and none "
        f"is visible; set precision: float32 on CPU"
    )
