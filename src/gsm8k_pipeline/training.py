"""What every training stage shares: model loading (full or LoRA), trainer settings, resumable
checkpoints, and an atomic finish. The TRL trainers do the training itself.

A stage writes OUT/model/ (weights or adapter, with tokenizer), OUT/train_log.csv and OUT/timings.json
(the run's wall-clock figures, timings.py). Checkpoints go to
OUT/checkpoints/, which no engine declares as an output: Snakemake and DVC delete a stage's outputs
before rerunning it, and the checkpoints must survive that to be resumed from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import PipelineError
from .fileio import atomic_dir, atomic_write_json, atomic_write_text, write_manifest


@dataclass(frozen=True)
class StageDirs:
    out_dir: Path

    @property
    def model(self) -> Path:
        return self.out_dir / "model"

    @property
    def checkpoints(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def log(self) -> Path:
        return self.out_dir / "train_log.csv"

    @property
    def timings(self) -> Path:
        from .timings import TIMINGS

        return self.out_dir / TIMINGS


def fingerprint(*parts) -> str:
    """Identity of a training run: a checkpoint is only resumed by the run that wrote it."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# In every trained model/ folder: the fingerprint of the run that trained it (what reuse() matches).
RUN_RECORD = "run.json"


def run_fingerprint(*parts, base: Path, threads: int) -> str:
    """A training run's identity for resuming and reusing: the stage's parts (data, settings, seed), the
    content of the model it starts from, and torch's thread count (which changes float sums)."""
    from .fileio import content_hash

    return fingerprint(*parts, content_hash(base), threads)


def reuse(dirs: StageDirs, run_id: str, candidates: Path | None, rate: float) -> bool:
    """Copy the learning-rate candidate in `candidates`/lr<rate>/ into `dirs` if it is this very run (same
    fingerprint: same data, settings, rate, seed and starting model), rather than train it a second time;
    False (train) otherwise. The final run of the tuning seed at the chosen rate is such a run: identical
    training gives identical files (tests/test_training.py holds the two byte-identical)."""
    from . import timings

    if candidates is None:
        return False
    source = StageDirs(Path(candidates) / f"lr{rate}")
    try:
        trained = json.loads((source.model / RUN_RECORD).read_text())["run_id"]
    except (FileNotFoundError, NotADirectoryError, KeyError, ValueError):
        return False  # no finished candidate there (or one from before runs were recorded)
    if trained != run_id or not source.log.is_file():
        return False
    timings.work_begins()
    clear_previous(dirs)
    with atomic_dir(dirs.model) as tmp:
        shutil.copytree(source.model, tmp, dirs_exist_ok=True)
    timings.write(dirs.timings, {"reused": str(source.out_dir)})
    atomic_write_text(dirs.log, source.log.read_text())
    shutil.rmtree(dirs.checkpoints, ignore_errors=True)
    print(f"reused {source.out_dir}: the same run (fingerprint {run_id}), trained as a learning-rate candidate")
    return True


def prepare_checkpoints(dirs: StageDirs, run_id: str) -> str | None:
    """The newest complete checkpoint of this same run, or None; stale ones from other runs are removed."""
    stamp = dirs.checkpoints / "RUN_ID"
    if dirs.checkpoints.exists() and (not stamp.exists() or stamp.read_text() != run_id):
        shutil.rmtree(dirs.checkpoints)
    dirs.checkpoints.mkdir(parents=True, exist_ok=True)
    stamp.write_text(run_id)
    complete = [p for p in dirs.checkpoints.glob("checkpoint-*") if _complete(p)]
    if not complete:
        return None
    return str(max(complete, key=lambda p: int(p.name.split("-")[1])))


def _complete(checkpoint: Path) -> bool:
    """trainer_state.json is written last, so a checkpoint without it, or with it empty or cut off (a kill
    while the Trainer wrote it: seen in CI), was cut short; the one before it is still there to resume from."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def warmup_steps(total_steps: int) -> int:
    """5 % warmup, in whole steps, and none for a run too short to have any: rounding 5 % of 1 step up to
    a whole step would make its only step's learning rate 0."""
    return int(0.05 * total_steps)


def trainer_args(params: dict, dirs: StageDirs, total_steps: int) -> dict:
    """TrainingArguments shared by SFTConfig and GRPOConfig, for a run of `total_steps` optimiser steps."""
    from .device import trainer_precision

    train = params["train"]
    return {
        "output_dir": str(dirs.checkpoints),
        "seed": params["seed"],
        "data_seed": params["seed"],
        **trainer_precision(params["precision"]),
        "gradient_checkpointing": train["gradient_checkpointing"],
        "save_strategy": "steps",
        "save_steps": train["save_steps"],
        "save_total_limit": 1,
        "logging_steps": train["logging_steps"],
        "report_to": [],
        "lr_scheduler_type": "cosine",
        "warmup_steps": warmup_steps(total_steps),
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }


def clear_previous(dirs: StageDirs) -> None:
    """A failed run must not leave an older result looking current; and one that can't be removed (a read-only
    folder) stops the run here, not after training, when publishing would fail."""
    try:
        if dirs.model.is_dir() and not dirs.model.is_symlink():
            shutil.rmtree(dirs.model)
        else:
            dirs.model.unlink(missing_ok=True)
        dirs.log.unlink(missing_ok=True)
        dirs.out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=dirs.out_dir).close()  # where model/ will be written
    except OSError as exc:
        raise PipelineError(
            f"{exc.filename or dirs.out_dir}: cannot replace the previous result ({exc.strerror}); nothing was trained"
        ) from None


def run(
    trainer,
    dirs: StageDirs,
    resume_from: str | None,
    stage: str,
    run_id: str,
    base: Path | None = None,
    records: dict[str, dict] | None = None,
) -> None:
    """Train (resuming if a checkpoint exists), then publish model/ and train_log.csv atomically.

    `stage`: the DAG stage, named in errors. `run_id`: the run's fingerprint, recorded in model/ (RUN_RECORD).
    `base`: the full-weights folder a LoRA adapter applies to, recorded in the adapter (adapters.py).
    `records`: JSON files (name -> content) published in model/ with it. A run whose loss or weights go
    non-finite publishes nothing.
    """
    from . import timings
    from .adapters import record_base
    from .finite import FiniteGuard, check_weights
    from .train_log import LogLastStep, csv_text, restore_token_count, wall_clock

    where = f"{stage} ({dirs.out_dir})"
    trainer.add_callback(FiniteGuard(where))
    trainer.add_callback(LogLastStep())
    if resume_from:
        print(f"resuming from {resume_from}", flush=True)
        restore_token_count(trainer, resume_from)
    clear_previous(dirs)
    timings.work_begins()
    output = trainer.train(resume_from_checkpoint=resume_from)
    print(f"trained to step {output.global_step}", flush=True)
    check_weights(trainer.model, where)
    with atomic_dir(dirs.model) as tmp:
        trainer.save_model(str(tmp))
        # The Trainer's pickled arguments name this run's checkpoint folder, so the same run trained in two
        # folders would differ in it (reuse() copies a candidate as the final run); its settings are params'.
        (tmp / "training_args.bin").unlink(missing_ok=True)
        trainer.processing_class.save_pretrained(str(tmp))
        if (tmp / "adapter_config.json").exists():
            record_base(tmp, base, final_dir=dirs.model)
        for name, content in {**(records or {}), RUN_RECORD: {"run_id": run_id}}.items():
            atomic_write_json(tmp / name, content)
        write_manifest(tmp)  # what Snakemake checks the folder against (workflow/rules/common.smk)
    timings.write(dirs.timings, {"log": wall_clock(trainer.state.log_history)})
    atomic_write_text(dirs.log, csv_text(trainer.state.log_history))
    shutil.rmtree(dirs.checkpoints)


# --- the rate of a grid a run trains at (the commands train-sft and train-grpo; here, not in cli/__init__.py,
# which every stage imports) --------------------------------------------------------------------------------


def method_learning_rate(params: dict, section: str) -> float:
    """The rate a full_sft, grpo or sft_from_traces run trains at: the one its command was given
    (--learning-rate, --learning-rate-from, else the middle of the grid: run.learning_rate), else, for
    callers of main() that build `run` themselves, the middle of the grid."""
    given = params["run"].get("learning_rate")
    return given if given is not None else middle(params[section]["learning_rates"])


def middle(grid: list[float]) -> float:
    """The middle of a grid (the lower of the two middle values of an even one), which the shipped grids are
    centred on: the rate of a command run by hand without --learning-rate or --learning-rate-from."""
    return sorted(grid)[(len(grid) - 1) // 2]


def at_rate(section: dict, rate: float) -> dict:
    """A method's section as one run trains with it: its grid replaced by the rate it trains at. What the run's
    checkpoints are fingerprinted with, so a candidate resumes only its own rate's checkpoints, and other
    values of the grid don't concern it."""
    return {k: v for k, v in section.items() if k != "learning_rates"} | {"learning_rate": rate}


def add_learning_rate(p) -> None:
    """--learning-rate / --learning-rate-from, for the stages that train at a rate of a grid (full_sft,
    grpo, sft_from_traces): a candidate is given its rate, a final run the one its selection chose."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--learning-rate",
        metavar="RATE",
        type=float,
        default=None,
        help="train at this rate (a candidate of the grid; default: the middle of the grid)",
    )
    group.add_argument(
        "--learning-rate-from",
        metavar="FILE",
        type=Path,
        default=None,
        help="train at the rate this selection chose (metrics/select/<method>_<budget>.json, `gsm8k select`)",
    )
    p.add_argument(
        "--candidates",
        metavar="DIR",
        type=Path,
        default=None,
        help="the method's learning-rate candidates at this budget (models/tune_<method>/<budget>/): if the "
        "one at this run's rate is this very run (the tuning seed's), it is copied rather than trained again",
    )


def learning_rate(args, section: str) -> float:
    """The rate --learning-rate or --learning-rate-from gives, else the middle of `section`'s grid. Read here,
    from the whole params file: the stage itself is not handed the grid (its rate is what it trains at)."""
    if args.learning_rate_from is not None:
        return chosen_rate(args.learning_rate_from)
    if args.learning_rate is not None:
        return args.learning_rate
    from .params import resolve

    return middle(resolve(args.params)[section]["learning_rates"])


def chosen_rate(path: str | Path) -> float:
    """The rate a selection file (select.py) chose."""
    path = Path(path)
    try:
        return float(json.loads(path.read_text())["chosen"])
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such selection file (the select_<method> stage writes it)") from None
    except (ValueError, KeyError, TypeError):
        raise PipelineError(f"{path}: not a selection file (no `chosen` rate)") from None
