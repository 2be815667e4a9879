"""Batched generation shared by eval, traces and GRPO's fast rollouts: left padding, KV cache, one tqdm bar.

Decoding is exactly what params.yaml says: every setting is passed explicitly, and the model comes without its
checkpoint's own generation_config (loading.py).
"""

from __future__ import annotations

import os
import time

FAST: bool | None = {"0": False, "1": True}.get(os.environ.get("GSM8K_FAST_GENERATION", ""))
"""The fast path, or None for the default: on a CUDA GPU only (GSM8K_FAST_GENERATION=0 or 1 overrides it:
bench/gpu_dag.py retries a stage that failed on the fast path without it). Fast = every batch of a call has one shape
(prompts left-padded to one length, a short last batch filled up with rows that stop at once), so transformers
compiles one decoding graph (static cache, CUDA graphs) per process instead of one per batch shape; and GRPO
samples from a merged copy of its policy (rollouts.py). On the CPU nothing is compiled, so the fast path is no
faster there, and the plain path keeps the default DAG's batches, hence its results, exactly as they were.
The bench sets it to measure both paths in one process."""

COMPILE: dict = {}
"""transformers.CompileConfig arguments for the fast path's decoding graph ({}: transformers' default, inductor
with "reduce-overhead"); the bench can try e.g. {"backend": "cudagraphs", "mode": None}: no inductor, a shorter
warm-up, CUDA graphs of the eager kernels."""

PROMPT_MULTIPLE = 64  # fast path: prompts padded to a multiple of this, so calls with similar prompts share a shape


def fast_path(fast: bool | None = None) -> bool:
    """Whether to take the fast path: `fast` if given, else FAST, else on a CUDA GPU."""
    from .device import device

    choice = FAST if fast is None else fast
    return device() == "cuda" if choice is None else choice


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


def render_prompts(tokenizer, conversations: list[list[dict]]) -> list[str]:
    return [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]


def generate_ids(
    model,
    prompt_ids: list[list[int]],
    *,
    batch_size: int,
    max_new_tokens: int,
    pad_token_id: int,
    eos_token_id: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    num_return_sequences: int = 1,
    processor=None,
    order: list[int] | None = None,
    fast: bool | None = None,
    prompt_length: int = 0,
    desc: str = "generate",
    record: list | None = None,
) -> list[list[list[int]]]:
    """For each prompt (token ids), `num_return_sequences` lists of new token ids as `model.generate` returns
    them: up to `max_new_tokens`, padding after EOS. The core of `generate`; GRPO's fast rollouts call it directly.

    Batches of `batch_size` prompts in `order` (default: longest first); on the fast path (`fast_path`) each
    batch holds `batch_size // num_return_sequences` prompts, so every pass of a stage has `batch_size` rows,
    prompts are left-padded to `prompt_length` or the call's longest (rounded up to PROMPT_MULTIPLE), and a
    short last batch is filled up with rows forced to stop at once: one shape, one compiled graph.
    `record`: a list that gets this call's timing (`pass_timing`).
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import CompileConfig, GenerationConfig, LogitsProcessorList

    fast = fast_path(fast)
    n = num_return_sequences
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i])) if order is None else order
    per_batch = max(1, batch_size // n) if fast else batch_size
    longest = max([prompt_length, *map(len, prompt_ids)])
    width = -(-longest // PROMPT_MULTIPLE) * PROMPT_MULTIPLE if fast else None
    config = GenerationConfig(
        **decoding(do_sample, temperature),
        max_new_tokens=max_new_tokens,
        num_return_sequences=n,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        # A preallocated cache: the default one grows by concatenation, which costs O(length)
        # per token and makes big batches slower than small ones on CPU. On a GPU, transformers compiles
        # the decoding step for it.
        cache_implementation="static",
        **({"compile_config": CompileConfig(**COMPILE)} if fast else {}),
    )
    results: list[list[list[int]]] = [[] for _ in prompt_ids]
    batches = []  # (seconds, prompts, new tokens) per batch
    with torch.inference_mode(), tqdm(total=len(prompt_ids), desc=desc, unit="problem") as bar:
        for start in range(0, len(order), per_batch):
            batch = order[start : start + per_batch]
            rows = [prompt_ids[i] for i in batch]
            if fast:
                rows += [rows[-1]] * (per_batch - len(batch))
            w = width or max(map(len, rows))
            input_ids = torch.tensor([[pad_token_id] * (w - len(r)) + r for r in rows], device=model.device)
            mask = torch.tensor([[0] * (w - len(r)) + [1] * len(r) for r in rows], device=model.device)
            processors = [processor()] if processor else []
            if len(rows) > len(batch):
                processors = [_StopFillRows(len(batch) * n, processors, eos_token_id)]
            started = time.perf_counter()
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=LogitsProcessorList(processors),
            )
            new_tokens = out[: len(batch) * n, w:].tolist()  # waits for the GPU: the batch's time is complete
            seconds = time.perf_counter() - started
            for row, ids in enumerate(new_tokens):
                results[batch[row // n]].append(ids)
            stops = {eos_token_id, pad_token_id}
            batches.append((seconds, len(batch), sum(_until_stop(ids, stops) for ids in new_tokens)))
            bar.update(len(batch))
    if record is not None:
        record.append(pass_timing(desc, fast, per_batch * n, batches))
    return results


class _StopFillRows:
    """The logits processor of a filled-up batch: the real rows (the first `real`) go through `inner`, the
    filler rows can only emit EOS, so they finish at their first token and never reach the calculator."""

    def __init__(self, real: int, inner: list, eos_token_id: int):
        self.real, self.inner, self.eos = real, inner, eos_token_id

    def __call__(self, input_ids, scores):
        for p in self.inner:  # a processor may write into its slice: it is a view of `scores`
            scores[: self.real] = p(input_ids[: self.real], scores[: self.real])
        scores[self.real :] = float("-inf")
        scores[self.real :, self.eos] = 0.0
        return scores


def first_stop(ids: list[int], stops: set) -> int:
    """Index of the first stop token in `ids`, or its length."""
    return next((k for k, t in enumerate(ids) if t in stops), len(ids))


def _until_stop(ids: list[int], stops: set) -> int:
    """Tokens generated up to and including the first stop token: the work a row actually did."""
    return min(first_stop(ids, stops) + 1, len(ids))


def pass_timing(desc: str, fast: bool, rows: int, batches: list[tuple[float, int, int]]) -> dict:
    """Wall time of one generation pass, with its first batch (which pays for compiling and capturing the
    decoding graph, or any other warm-up) apart from the steady state of the others. Timings, not results:
    they differ run to run."""
    seconds = sum(s for s, _, _ in batches)
    steady_s = sum(s for s, _, _ in batches[1:])
    steady_tokens = sum(t for _, _, t in batches[1:])
    rate = steady_tokens / steady_s if steady_s > 0 and steady_tokens else None
    first_s, _, first_tokens = batches[0] if batches else (0.0, 0, 0)
    return {
        "pass": desc,
        "fast": fast,
        "rows_per_batch": rows,
        "batches": len(batches),
        "problems": sum(p for _, p, _ in batches),
        "new_tokens": sum(t for _, _, t in batches),
        "seconds": round(seconds, 3),
        "first_batch_seconds": round(first_s, 3),
        "tokens_per_second": round(sum(t for _, _, t in batches) / seconds, 1) if seconds > 0 else None,
        "steady_tokens_per_second": round(rate, 1) if rate else None,
        "steady_problems_per_second": round(sum(p for _, p, _ in batches[1:]) / steady_s, 3) if rate else None,
        # The first batch's time beyond what the steady rate gives its tokens: the warm-up.
        "warmup_seconds": round(max(0.0, first_s - first_tokens / rate), 3) if rate else None,
    }


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
    fast: bool | None = None,
    record: list | None = None,
) -> list[list[str]]:
    """Completions for each prompt (a list of `num_return_sequences` strings per prompt).

    `processor`: called once per batch for a fresh LogitsProcessor with per-row state, e.g.
    calculator.Calculator (calculator mode). Passed in rather than imported here, so the training stages
    that import this module don't depend on the calculator's code.

    Prompts are batched longest-first so a batch holds similar lengths (less padding); results come
    back in the input order. Each completion ends at the first EOS; special tokens (role markers,
    padding) are dropped, while the format tags — ordinary added tokens — are kept. `fast`, `record`:
    as `generate_ids`.
    """
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
    out = generate_ids(
        model,
        ids,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        do_sample=do_sample,
        temperature=temperature,
        num_return_sequences=num_return_sequences,
        processor=processor,
        fast=fast,
        desc=desc,
        record=record,
        # Longest text first, as this function always batched: the CPU DAG's batches stay as they were.
        order=sorted(range(len(prompts)), key=lambda i: -len(prompts[i])),
    )
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    return [[tokenizer.decode(ids[: first_stop(ids, stops)], skip_special_tokens=True) for ids in rows] for rows in out]
