"""GRPO stage with TRL's GRPOTrainer: from prep_sft, on the first `budget` train problems."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from . import PipelineError


@dataclass(frozen=True)
class GRPOStageConfig:
    output_dir: Path
    base_model: Path
    train_file: Path = Path("data/gsm8k/train.jsonl")
    candidates: Path | None = None  # learning-rate candidates: this run is copied from one if it is the same


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


def fast_rollouts(params: dict, tokenizer, prompts: list):
    """GRPO's rollout_func on the fast path (rollouts.py; vLLM has its own), else None: TRL generates."""
    from .generation import fast_path

    if params["grpo"]["use_vllm"] or not fast_path():
        return None
    from .rollouts import Rollouts

    # The longest prompt of the run: every step's prompts pad to it, so one decoding graph serves them all.
    longest = max(
        len(ids)
        for ids in tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
    )
    return Rollouts(
        tokenizer,
        precision=params["precision"],
        max_new_tokens=params["grpo"]["max_completion_length"],
        temperature=params["grpo"]["temperature"],
        prompt_length=longest,
    )


def main(params: dict, config: GRPOStageConfig) -> None:
    import torch

    from .adapters import base_folder
    from .formatting import prompt_messages
    from .loading import load_trainable
    from .rewards import reward_funcs
    from .task import gold, read_jsonl
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

    section = at_rate(params["grpo"], method_learning_rate(params, "grpo"))  # the rate of the grid it was given
    check_vllm(section["use_vllm"])
    rows = read_jsonl(config.train_file)
    n = params["run"]["samples"] or len(rows)
    if n > len(rows):
        raise PipelineError(f"asked for {n} training problems, but {config.train_file} has {len(rows)}")
    rows = rows[:n]
    num_generations = section["num_generations"]
    system = params["prompt"]["system"]
    prompts = [prompt_messages(r["question"], system) for r in rows]
    names = list(section["rewards"])
    dirs = StageDirs(config.output_dir)
    run_id = run_fingerprint(
        "grpo",
        str(config.base_model),
        rows,
        section,
        num_generations,
        params["lora"],
        params["train"],
        params["precision"],
        params["seed"],
        system,
        base=config.base_model,
        threads=torch.get_num_threads(),
    )
    if reuse(dirs, run_id, config.candidates, section["learning_rate"]):
        return
    # Imported here, after the reuse check: a copied run needs neither (about 4 s of a job's start-up).
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    dataset = Dataset.from_list([{"prompt": p, "answer": gold(r["answer"])} for p, r in zip(prompts, rows)])
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
        # Said outright: rollouts keep their KV cache when training checkpoints gradients (TRL turns
        # checkpointing off around generate; the Trainer sets the model's config.use_cache to False). Not for
        # vLLM, whose SamplingParams has no such key.
        generation_kwargs=None if section["use_vllm"] else {"use_cache": True},
        # A preallocated cache, as eval's (generation.py): the default one grows by concatenation every token.
        # On the CPU the same sampled completions, so the same weights, byte for byte, 4 % sooner
        # (docs/benchmarks.md, issue 25). TRL's own generation only: vLLM and the fast path have theirs.
        cache_implementation="static",
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs(names),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        rollout_func=fast_rollouts(params, tokenizer, prompts),
    )
    print(f"grpo: {len(rows)} problems x {num_generations} generations, rewards {names}", flush=True)
    run(trainer, dirs, resume_from, "grpo", run_id, base=base_folder(config.base_model))
