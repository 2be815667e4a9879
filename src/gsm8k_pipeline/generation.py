"""Batched generation shared by eval and traces: left padding, KV cache, one tqdm bar.

Decoding is exactly what params.yaml says: a checkpoint's generation_config.json (a hub chat model ships
sampling and repetition-penalty settings) is replaced on load, and every setting is passed explicitly.
"""

from __future__ import annotations

from pathlib import Path


def ensure_pad_token(tokenizer) -> None:
    """A tokenizer without a pad token pads with EOS (TRL's fallback); padding is masked out anyway."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def plain_generation_config(tokenizer):
    """A generation_config carrying only the stop and pad tokens: nothing of the checkpoint's decoding."""
    from transformers import GenerationConfig

    return GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def decoding(do_sample: bool, temperature: float) -> dict:
    """Every decoding setting, explicit: plain greedy, or plain sampling at `temperature` (no top-k, no
    nucleus, no penalty — the distribution GRPO samples from). Recorded as-is in metrics and trace stats."""
    return {
        "do_sample": do_sample,
        "temperature": temperature if do_sample else 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "repetition_penalty": 1.0,
    }


def load_for_inference(model_path: str | Path, precision: str = "float32"):
    """(model, tokenizer) from a saved model dir — full weights, or a PEFT adapter merged into its base —
    on the GPU when there is one, with weights in `precision` (bf16/fp16 need the GPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .device import device, inference_dtype
    from .errors import PipelineError

    dtype = inference_dtype(precision)  # first: a precision this machine can't run fails before any loading
    model_path = Path(model_path)
    if not model_path.is_dir():
        raise PipelineError(f"{model_path}: no such model directory")
    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    ensure_pad_token(tokenizer)
    if (model_path / "adapter_config.json").exists():
        from .adapters import load_adapter_model

        model = load_adapter_model(model_path, dtype=dtype).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    model.generation_config = plain_generation_config(tokenizer)
    model.to(device())
    model.eval()
    return model, tokenizer


def render_prompts(tokenizer, conversations: list[list[dict]]) -> list[str]:
    return [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]


def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    batch_size: int,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    num_return_sequences: int = 1,
    processor=None,
    desc: str = "generate",
) -> list[list[str]]:
    """Completions for each prompt (a list of `num_return_sequences` strings per prompt).

    `processor`: called once per batch for a fresh LogitsProcessor with per-row state, e.g.
    calculator.Calculator (calculator mode). Passed in rather than imported here, so the training stages
    that import this module don't depend on the calculator's code.

    Prompts are batched longest-first so a batch holds similar lengths (less padding); results come
    back in the input order. Each completion ends at the first EOS; special tokens (role markers,
    padding) are dropped, while the format tags — ordinary added tokens — are kept.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig, LogitsProcessorList

    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[list[str]] = [[] for _ in prompts]
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    config = GenerationConfig(
        **decoding(do_sample, temperature),
        max_new_tokens=max_new_tokens,
        num_return_sequences=num_return_sequences,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        # A preallocated cache: the default one grows by concatenation, which costs O(length)
        # per token and makes big batches slower than small ones on CPU.
        cache_implementation="static",
    )
    with torch.inference_mode(), tqdm(total=len(prompts), desc=desc, unit="problem") as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(model.device)
            processors = LogitsProcessorList([processor()] if processor else [])
            out = model.generate(**enc, generation_config=config, logits_processor=processors)
            new_tokens = out[:, enc["input_ids"].shape[1] :].tolist()
            for row, ids in enumerate(new_tokens):
                cut = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
                results[batch[row // num_return_sequences]].append(
                    tokenizer.decode(ids[:cut], skip_special_tokens=True)
                )
            bar.update(len(batch))
    return results
