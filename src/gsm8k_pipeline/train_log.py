"""train_log.csv: the Trainer's log_history as a table that is the same whether or not the run was killed
and resumed from a checkpoint (the Trainer restores log_history from it, but not everything else), and
whichever engine or machine ran it: the logged wall-clock figures (step_time, train_runtime, ...) go to
the stage's timings file instead (timings.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from transformers import TrainerCallback


class LogLastStep(TrainerCallback):
    """Log the last step too, when it is not a multiple of logging_steps: then the logged losses cover
    every step, and the whole run's train_loss can be computed from the log (train_loss_of)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_log = True
        return control


def restore_token_count(trainer, checkpoint: str) -> None:
    """Continue SFT's `num_tokens` from the checkpoint: TRL's SFTTrainer counts tokens on the trainer,
    not in the TrainerState a checkpoint restores, so a resumed run would count from 0 again (GRPO logs
    state.num_input_tokens_seen, which is restored). The checkpoint's step was logged (params.py makes
    save_steps a multiple of logging_steps, and the last step is always logged), so its count is exact."""
    from trl import SFTTrainer

    if not isinstance(trainer, SFTTrainer):
        return
    history = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["log_history"]
    counts = [row["num_tokens"] for row in history if "num_tokens" in row]
    if counts:
        trainer._total_train_tokens = int(counts[-1])


def train_loss_of(rows: list[dict]) -> float | None:
    """Mean loss per step over the whole run, from the logged losses (each the mean over the steps since
    the previous log). The Trainer's own train_loss covers only the steps of its last train() call."""
    total, previous = 0.0, 0
    for row in rows:
        if "loss" in row:
            total += row["loss"] * (row["step"] - previous)
            previous = row["step"]
    return total / previous if previous else None


def wall_clock(log_history: list[dict]) -> list[dict]:
    """The logged wall-clock figures, by step (the stage's timings file)."""
    from .timings import is_wall_clock

    rows = [{"step": r["step"], **{k: v for k, v in r.items() if is_wall_clock(k)}} for r in log_history if "step" in r]
    return [r for r in rows if len(r) > 1]


def csv_text(log_history: list[dict]) -> str:
    """The log as CSV, without its wall-clock figures: one row per logged step plus the final summary row;
    columns step, epoch, then the rest by name (a resumed history's rows come back from JSON with their
    keys sorted, a live one's in logging order: neither order can be kept for both)."""
    import pandas as pd

    from .timings import is_wall_clock

    rows = [{k: v for k, v in r.items() if not is_wall_clock(k)} for r in log_history if "step" in r]
    loss = train_loss_of(rows)
    for row in rows:
        if "train_loss" in row and loss is not None:
            row["train_loss"] = loss
    names = {key for row in rows for key in row} - {"step", "epoch"}
    columns = [c for c in ("step", "epoch") if any(c in row for row in rows)] + sorted(names)
    out = io.StringIO()
    pd.DataFrame(rows, columns=columns).to_csv(out, index=False)
    return out.getvalue()
