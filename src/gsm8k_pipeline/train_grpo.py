"""GRPO stage with TRL's GRPOTrainer: from prep_sft, on the first `budget` train problems."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError


@dataclass(frozen=True)
class GRPOStageConfig:
    output_dir: Path
    base_model: Path
    train_file: Path = Path("data/gsm8k/train.jsonl")


def check_vllm(use_vllm: bool) -> None:
    """vLLM generation is GPU-only: fail here, clearly, rather than deep inside TRL."""
    if not use_vllm:
        return
    import importlib.util

    import torch


    if importlib.util.find_spec("vllm") is None:
        raise PipelineError("grpo.use_vllm is true but vLLM is not installed (`uv pip install vllm` on a GPU machine)")
    if not torch.cuda.is_available():
        raise PipelineError("grpo.use_vllm is true but no CUDA GPU is visible; set grpo.use_vllm: false on CPU")


def main(params: dict, config: GRPOStageConfig) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from .adapters import base_folder
    from .task import gold, read_jsonl
    from .formatting import prompt_messages
    from .rewards import reward_funcs
    from .training import StageDirs, fingerprint, load_trainable, prepare_checkpoints, run, trainer_args

    section = params["grpo"]
    check_vllm(section["use_vllm"])
    rows = read_jsonl(config.train_file)
    n = params["run"]["samples"] or len(rows)
    if n > len(rows):
        raise PipelineError(f"asked for {n} training problems, but {config.train_file} has {len(rows)}")
    rows = rows[:n]
    num_generations = section["num_generations"]
    system = params["prompt"]["system"]
    dataset = Dataset.from_list([
        {"prompt": prompt_messages(r["question"], system), "answer": gold(r["answer"])} for r in rows
    ])
    names = list(section["rewards"])
    dirs = StageDirs(config.output_dir)
    run_id = fingerprint("grpo", str(config.base_model), rows, section, num_generations, params["lora"],
                         params["train"], params["precision"], params["seed"], system)
    resume_from = prepare_checkpoints(dirs, run_id)
    model, tokenizer, peft_config = load_trainable(config.base_model, params)
    args = GRPOConfig(
        **trainer_args(params, dirs, math.ceil(n / section["prompts_per_step"]) * section["epochs"]),
        num_train_epochs=section["epochs"],
        learning_rate=section["learning_rate"],
        per_device_train_batch_size=section["prompts_per_step"] * num_generations,
        num_generations=num_generations,
        max_completion_length=section["max_completion_length"],
        # Plain sampling at `temperature`, stated explicitly (the checkpoint's generation_config is dropped
        # on load): traces sample the same way, so SFT on traces learns GRPO's own distribution.
        temperature=section["temperature"],
        top_p=1.0,
        top_k=0,
        repetition_penalty=1.0,
        beta=section["beta"],
        use_vllm=section["use_vllm"],
        reward_weights=[section["rewards"][name] for name in names],
        disable_dropout=True,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs(names), args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config)
    print(f"grpo: {len(rows)} problems x {num_generations} generations, rewards {names}", flush=True)
    run(trainer, dirs, resume_from, "grpo", base=base_folder(config.base_model))
