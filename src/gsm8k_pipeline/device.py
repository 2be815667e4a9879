"""Where models run and in what precision (params: `precision`).

Every stage that runs a model puts it on the CUDA GPU when there is one, else on the CPU. `precision`
is the compute precision: training always keeps float32 master weights (a bf16 checkpoint trained in
bf16 loses small updates to rounding) and gets bf16/fp16 through the Trainer's autocast; inference
loads the weights in that dtype on a GPU, and in float32 on the CPU.
"""

from __future__ import annotations

from . import PipelineError

PRECISIONS = ("float32", "bf16", "fp16")


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_precision(precision: str) -> str:
    """`precision` itself, or a one-line error naming the key where this machine can't compute in it."""
    if precision not in PRECISIONS:
        raise PipelineError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return precision  # any machine: no torch to import (check-params calls this)
    import torch

    if not torch.cuda.is_available():
        raise PipelineError(
            f"precision: {precision} needs a CUDA GPU and none is visible; set precision: float32 on CPU"
        )
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise PipelineError("precision: bf16 is not supported by this GPU; use fp16 or float32")
    return precision


def inference_dtype(precision: str):
    import torch

    check_precision(precision)
    return {"float32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def trainer_precision(precision: str) -> dict:
    """TrainingArguments for `precision` (the weights themselves stay float32)."""
    check_precision(precision)
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}
