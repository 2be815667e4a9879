"""SFT stages with TRL's SFTTrainer, loss on the completion only.

- prep: format learning on the first prep_sft.samples train problems, from the base model;
- full: the first `budget` train problems (run.samples), from prep_sft;
- traces: a traces file (data/traces/grpo_<budget>_s<seed>.jsonl), from prep_sft, with full_sft's settings so the
  two SFT variants differ only in their targets.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import PipelineError

STAGES = ("prep", "full")


@dataclass(frozen=True)
class SFTStageConfig:
    stage: str  # prep | full
    output_dir: Path
    base_model: Path
    train_file: Path = Path("data/gsm8k/train.jsonl")
    traces_file: Path | None = None  # train on these targets instead of the original solutions
    candidates: Path | None = None  # learning-rate candidates: this run is copied from one if it is the same


def examples(config: SFTStageConfig, params: dict) -> list[dict]:
    """(question, target) pairs in the output format."""
    from .formatting import to_target
    from .task import read_jsonl, read_traces

    if config.traces_file is not None:
        pairs = [(r["question"], r["completion"]) for r in read_traces(config.traces_file)]
    else:
        pairs = [(r["question"], to_target(r["answer"])) for r in read_jsonl(config.train_file)]
    n = params["prep_sft"]["samples"] if config.stage == "prep" else params["run"]["samples"] or len(pairs)
    if n > len(pairs):
        raise PipelineError(f"asked for {n} training examples, but only {len(pairs)} are available")
    return [{"question": q, "target": t} for q, t in pairs[:n]]


def main(params: dict, config: SFTStageConfig) -> None:
    import torch

    from .adapters import base_folder
    from .formatting import prompt_messages
    from .loading import load_trainable
    from .training import (
        StageDirs,
        at_rate,
        method_learning_rate,
        prepare_checkpoints,
        reuse,
        run,
        run_fingerprint,
        trainer_args,
    )

    if config.stage not in STAGES:
        raise PipelineError(f"--stage must be one of {STAGES}, not {config.stage!r}")
    section = params["prep_sft" if config.stage == "prep" else "full_sft"]
    if config.stage == "full":  # the rate of full_sft's grid this run was given (training.method_learning_rate)
        section = at_rate(section, method_learning_rate(params, "full_sft"))
    rows = examples(config, params)
    system = params["prompt"]["system"]
    dirs = StageDirs(config.output_dir)
    run_id = run_fingerprint(
        "sft",
        config.stage,
        str(config.base_model),
        rows,
        section,
        params["lora"],
        params["train"],
        params["precision"],
        params["seed"],
        system,
        base=config.base_model,
        threads=torch.get_num_threads(),
    )
    if config.stage == "full" and reuse(dirs, run_id, config.candidates, section["learning_rate"]):
        return
    # Imported here, after the reuse check: a copied run needs neither (about 4 s of a job's start-up).
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    dataset = Dataset.from_list(
        [
            {
                "prompt": prompt_messages(r["question"], system),
                "completion": [{"role": "assistant", "content": r["target"]}],
            }
            for r in rows
        ]
    )
    model, tokenizer, peft_config = load_trainable(config.base_model, params)
    args = SFTConfig(
        **trainer_args(params, dirs, math.ceil(len(rows) / section["batch_size"]) * section["epochs"]),
        num_train_epochs=section["epochs"],
        learning_rate=section["learning_rate"],
        per_device_train_batch_size=section["batch_size"],
        max_length=section["max_length"],
        completion_only_loss=True,
    )
    had_checkpoints = dirs.checkpoints.exists()
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    key = f"{'prep_sft' if config.stage == 'prep' else 'full_sft'}.max_length"
    try:
        record = kept_examples(trainer.train_dataset, len(rows), key, section["max_length"])
    except PipelineError:
        if not had_checkpoints:  # nothing of this run left behind
            shutil.rmtree(dirs.checkpoints, ignore_errors=True)
        raise
    resume_from = prepare_checkpoints(dirs, run_id)
    print(
        f"sft {config.stage}: {record['trained']} examples from {config.traces_file or config.train_file} "
        f"({record['truncated']} cut at {key} {section['max_length']}, {record['dropped']} dropped)",
        flush=True,
    )
    stage = "prep_sft" if config.stage == "prep" else "sft_from_traces" if config.traces_file else "full_sft"
    run(trainer, dirs, resume_from, stage, run_id, base=base_folder(config.base_model), records={EXAMPLES: record})


# TRL cuts every tokenized example at max_length and then drops, in silence, those left without a completion
# token (no loss). At most this fraction of a stage's examples may be cut or dropped; beyond it the stage
# refuses, naming the key. The counts are recorded in the model folder (EXAMPLES).
TRUNCATION_TOLERANCE = 0.01
EXAMPLES = "sft_examples.json"


def kept_examples(dataset, asked: int, key: str, max_length: int) -> dict:
    """What TRL kept of `asked` examples (its tokenized, cut and filtered `dataset`): a record of the
    counts, or a one-line error naming `key` when more than TRUNCATION_TOLERANCE of them were lost. An
    example exactly max_length tokens long counts as cut (TRL's dataset no longer tells the two apart)."""
    trained = len(dataset)
    dropped = asked - trained
    truncated = sum(1 for ids in dataset["input_ids"] if len(ids) >= max_length)
    allowed = math.floor(TRUNCATION_TOLERANCE * asked)
    record = {
        "asked": asked,
        "trained": trained,
        "truncated": truncated,
        "dropped": dropped,
        "max_length": max_length,
        "tolerance": TRUNCATION_TOLERANCE,
    }
    if dropped + truncated > allowed:
        raise PipelineError(
            f"{key}: {max_length} tokens lose {dropped + truncated} of {asked} training examples ({dropped} "
            f"dropped, no completion token left; {truncated} cut short), more than the {allowed} "
            f"({TRUNCATION_TOLERANCE:.0%}) tolerated; raise {key} or shorten prompt.system"
        )
    return record
