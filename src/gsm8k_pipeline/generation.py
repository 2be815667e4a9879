"""Batched generation shared by eval and traces: left padding, KV cache, one tqdm bar."""

from __future__ import annotations

from pathlib import Path


def load_for_inference(model_path: str | Path):
    """(model, tokenizer) from a saved model dir — full weights, or a PEFT adapter merged into its base."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .errors import PipelineError

    model_path = Path(model_path)
    if not model_path.is_dir():
        raise PipelineError(f"{model_path}: no such model directory")
    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    if (model_path / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(model_path).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path)
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
    desc: str = "generate",
) -> list[list[str]]:
    """Completions for each prompt (a list of `num_return_sequences` strings per prompt).

    Prompts are batched longest-first so a batch holds similar lengths (less padding); results come
    back in the input order. Each completion ends at the first EOS; special tokens (role markers,
    padding) are dropped, while the format tags — ordinary added tokens — are kept.
    """
    import torch
    from tqdm.auto import tqdm

    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[list[str]] = [[] for _ in prompts]
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    sampling = {"do_sample": True, "temperature": temperature} if do_sample else {"do_sample": False}
    with torch.inference_mode(), tqdm(total=len(prompts), desc=desc, unit="problem") as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                num_return_sequences=num_return_sequences,
                pad_token_id=tokenizer.pad_token_id,
                # A preallocated cache: the default one grows by concatenation, which costs O(length)
                # per token and makes big batches slower than small ones on CPU.
                cache_implementation="static",
                **sampling,
            )
            new_tokens = out[:, enc["input_ids"].shape[1] :].tolist()
            for row, ids in enumerate(new_tokens):
                cut = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
                results[batch[row // num_return_sequences]].append(
                    tokenizer.decode(ids[:cut], skip_special_tokens=True)
                )
            bar.update(len(batch))
    return results
