"""What every training stage shares: model loading (full or LoRA), trainer settings, resumable
checkpoints, and an atomic finish. The TRL trainers do the training itself.

A stage writes OUT/model/ (weights or adapter, with tokenizer) and OUT/train_log.csv. Checkpoints go to
OUT/checkpoints/, which no engine declares as an output: Snakemake and DVC delete a stage's outputs
before rerunning it, and the checkpoints must survive that to be resumed from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .fileio import atomic_dir, atomic_write_text


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


def fingerprint(*parts) -> str:
    """Identity of a training run: a checkpoint is only resumed by the run that wrote it."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def prepare_checkpoints(dirs: StageDirs, run_id: str) -> str | None:
    """The newest complete checkpoint of this same run, or None; stale ones from other runs are removed."""
    stamp = dirs.checkpoints / "RUN_ID"
    if dirs.checkpoints.exists() and (not stamp.exists() or stamp.read_text() != run_id):
        shutil.rmtree(dirs.checkpoints)
    dirs.checkpoints.mkdir(parents=True, exist_ok=True)
    stamp.write_text(run_id)
    # trainer_state.json is written last, so a checkpoint without it was cut short by a kill.
    complete = [p for p in dirs.checkpoints.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    if not complete:
        return None
    return str(max(complete, key=lambda p: int(p.name.split("-")[1])))


def load_trainable(model_path: Path, params: dict):
    """(model, tokenizer, peft_config) to train from `model_path`.

    With LoRA on: a dir holding an adapter (e.g. prep_sft's) keeps training that adapter, so every saved
    adapter applies to the base model directly; full weights get a new adapter from params.lora.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .errors import PipelineError

    if not model_path.is_dir():
        raise PipelineError(f"{model_path}: no such model directory")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    lora = params["lora"]
    is_adapter = (model_path / "adapter_config.json").exists()
    if is_adapter:
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(model_path, is_trainable=lora["enabled"])
        if not lora["enabled"]:
            model = model.merge_and_unload()
        return model, tokenizer, None
    model = AutoModelForCausalLM.from_pretrained(model_path)
    if not lora["enabled"]:
        return model, tokenizer, None
    from peft import LoraConfig

    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                        target_modules=lora["target_modules"], task_type="CAUSAL_LM")
    return model, tokenizer, config


def trainer_args(params: dict, dirs: StageDirs) -> dict:
    """TrainingArguments shared by SFTConfig and GRPOConfig."""
    train = params["train"]
    return {
        "output_dir": str(dirs.checkpoints),
        "seed": params["seed"],
        "data_seed": params["seed"],
        "bf16": train["bf16"],
        "gradient_checkpointing": train["gradient_checkpointing"],
        "save_strategy": "steps",
        "save_steps": train["save_steps"],
        "save_total_limit": 1,
        "logging_steps": train["logging_steps"],
        "report_to": [],
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,  # a float below 1 is a fraction of the total steps
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }


def run(trainer, dirs: StageDirs, resume_from: str | None) -> None:
    """Train (resuming if a checkpoint exists), then publish model/ and train_log.csv atomically."""
    import pandas as pd

    if resume_from:
        print(f"resuming from {resume_from}", flush=True)
    # A failed run must not leave an older result looking current.
    shutil.rmtree(dirs.model, ignore_errors=True)
    dirs.log.unlink(missing_ok=True)
    output = trainer.train(resume_from_checkpoint=resume_from)
    print(f"trained to step {output.global_step}", flush=True)
    with atomic_dir(dirs.model) as tmp:
        trainer.save_model(str(tmp))
        trainer.processing_class.save_pretrained(str(tmp))
    rows = [r for r in trainer.state.log_history if "step" in r]
    atomic_write_text(dirs.log, pd.DataFrame(rows).to_csv(index=False))
    shutil.rmtree(dirs.checkpoints)
