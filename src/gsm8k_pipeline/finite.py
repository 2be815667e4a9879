"""Nothing non-finite is published: a training stage stops at the first non-finite loss or gradient norm,
and checks every weight before it writes the model (the last update is seen by no logged loss)."""

from __future__ import annotations

import math

from transformers import TrainerCallback

from . import PipelineError

# What the Trainer logs that must be finite; other metrics (e.g. a reward's std over one group) may
# legitimately be NaN.
WATCHED = ("loss", "grad_norm", "train_loss")
DIVERGED = "training diverged (is the learning rate too high?); nothing was published"


class FiniteGuard(TrainerCallback):
    """Raises a PipelineError naming the stage, the figure and the step at the first non-finite one."""

    def __init__(self, where: str):
        self.where = where

    def on_log(self, args, state, control, logs=None, **kwargs):
        # fp16's loss scaler overflows now and then by design: that step's gradient norm is inf and the
        # scaler skips the update, so only the loss tells divergence there.
        watched = [k for k in WATCHED if not (k == "grad_norm" and getattr(args, "fp16", False))]
        for key in watched:
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise PipelineError(f"{self.where}: {key} is {value} at step {state.global_step}; {DIVERGED}")


def first_non_finite(model) -> str | None:
    """The name of the first parameter holding a NaN or an infinity, or None."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if not torch.isfinite(param).all():
                return name
    return None


def check_weights(model, where: str) -> None:
    """A PipelineError naming the first parameter holding a NaN or an infinity."""
    if (name := first_non_finite(model)) is not None:
        raise PipelineError(f"{where}: weight {name} is not finite after training; {DIVERGED}")
