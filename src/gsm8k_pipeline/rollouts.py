"""GRPO's rollouts on the fast path (generation.fast_path): TRL's `rollout_func` hook, sampling through
generation.generate_ids from an inference copy of the policy.

TRL's own path generates with the training model itself: float32 master weights under autocast, LoRA
unmerged (three extra matmuls per adapted linear), a growing cache, compilation disabled. At 135M parameters
a decoding step is then all Python and kernel launches (~45 ms at batch 64 on an H200). The copy here is
what eval loads (load_for_inference): LoRA merged into the weights, in the inference dtype, a plain model
whose decoding compiles to one CUDA graph. Before every generation step its weights are refreshed in place
(same tensors, so the captured graph stays valid) from the policy: W + LoRA's delta, cast.

Sampling is GRPO's: plain sampling at `temperature`, completions ending at (and including) the first EOS,
prompts rendered with the chat template as TRL renders them. Like vLLM's colocated rollouts, the sampler's
numerics (merged, bf16) differ slightly from the trainer's; TRL recomputes every log-probability it uses.
"""

from __future__ import annotations

import time


def merged_weights(policy) -> dict:
    """The policy's weights as one plain model's parameters, by name: for each LoRA layer its base weight
    plus the active adapters' delta (PEFT's own `get_delta_weight`, as `merge_and_unload` computes it)."""
    from peft.tuners.lora import LoraLayer

    model = policy.get_base_model() if hasattr(policy, "get_base_model") else policy
    weights = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            base = module.get_base_layer()
            weights[f"{name}.weight"] = base.weight + sum(module.get_delta_weight(a) for a in module.active_adapters)
            if getattr(base, "bias", None) is not None:
                weights[f"{name}.bias"] = base.bias
    for name, param in model.named_parameters():
        if ".base_layer." not in name and "lora_" not in name:
            weights[name] = param
    return weights


class Rollouts:
    """`rollout_func` for GRPOTrainer: one call per generation step. `timings` gets one entry per call
    (seconds generating, seconds refreshing the copy, sequences, generated tokens) for the bench."""

    def __init__(self, tokenizer, *, precision: str, max_new_tokens: int, temperature: float, prompt_length: int):
        self.tokenizer, self.precision = tokenizer, precision
        self.max_new_tokens, self.temperature, self.prompt_length = max_new_tokens, temperature, prompt_length
        self.model = None
        self.timings: list[dict] = []

    def refresh(self, policy):
        """The inference copy, made at the first call and its weights overwritten in place afterwards."""
        import torch
        from transformers import AutoModelForCausalLM

        from .device import inference_dtype
        from .loading import plain_generation_config

        weights = merged_weights(policy)
        if self.model is None:
            base = policy.get_base_model() if hasattr(policy, "get_base_model") else policy
            with torch.device(base.device):
                self.model = AutoModelForCausalLM.from_config(base.config, dtype=inference_dtype(self.precision))
            self.model.generation_config = plain_generation_config(self.tokenizer)
            self.model.requires_grad_(False)
            self.model.eval()
        params = dict(self.model.named_parameters())
        if params.keys() != weights.keys():
            differ = sorted(params.keys() ^ weights.keys())[:5]
            raise RuntimeError(f"inference copy and policy differ in parameters: {differ}")
        with torch.no_grad():
            for name, w in weights.items():
                params[name].copy_(w)
        return self.model

    def __call__(self, prompts: list, trainer) -> dict:
        from .generation import generate_ids

        started = time.perf_counter()
        model = self.refresh(trainer.model)
        synced = time.perf_counter()
        tok = self.tokenizer
        # As TRL renders prompts for its own generation (GRPOTrainer._tokenize_prompts, no tools).
        prompt_ids = tok.apply_chat_template(prompts, add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        out = generate_ids(
            model,
            prompt_ids,
            batch_size=len(prompt_ids),
            max_new_tokens=self.max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            do_sample=True,
            temperature=self.temperature,
            fast=True,
            prompt_length=self.prompt_length,
            desc="grpo rollouts",
        )
        # Up to and including the first EOS, as TRL keeps it: the model is trained to stop.
        completions = [ids[: ids.index(tok.eos_token_id) + 1] if tok.eos_token_id in ids else ids for [ids] in out]
        now = time.perf_counter()
        self.timings.append(
            {
                "seconds": now - synced,
                "refresh_seconds": synced - started,
                "sequences": len(completions),
                "new_tokens": sum(map(len, completions)),
            }
        )
        return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": None}
