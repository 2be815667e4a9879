"""A local stand-in for a hub chat model (Qwen2.5-Instruct's shape), built from scratch with no download:
for tests (tiny sizes) and bench/gpu_smoke.py (the real 0.5B architecture, random weights).

What makes it hub-shaped, i.e. what the tiny default model does not exercise: the Qwen2 architecture, a
ChatML chat template with a default system turn, a byte-level BPE vocabulary that does *not* contain the
format tags (they are split into ordinary tokens), a generation_config.json with sampling and penalty
settings like the real one, bf16 weights on disk, and optionally no pad token (like many Llama tokenizers).
"""

from __future__ import annotations

from pathlib import Path

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Qwen2.5-Instruct's template, without the tool-calling branches.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Qwen2.5-0.5B-Instruct's architecture (config.json of the hub model).
QWEN25_05B = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
}
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 64,
    "vocab_size": None,
    "max_position_embeddings": 2048,
}


def build_tokenizer(texts: list[str], vocab_size: int = 1000, pad: bool = True):
    """Byte-level BPE trained on `texts` (which must not contain the format tags, so they stay split)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[ENDOFTEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT if pad else None,
        chat_template=CHAT_TEMPLATE,
        padding_side="right",
        model_max_length=32768,
    )


def build_model(tokenizer, arch: dict, seed: int = 0):
    """A seeded random Qwen2ForCausalLM of shape `arch`, with a generation_config like the hub model's."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    endoftext = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    config = Qwen2Config(
        **{**arch, "vocab_size": arch["vocab_size"] or len(tokenizer)},
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        bos_token_id=endoftext,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=endoftext,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=endoftext,
        eos_token_id=[tokenizer.eos_token_id, endoftext],
        pad_token_id=endoftext,
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        repetition_penalty=1.1,
    )
    return model


def gsm8k_texts(rows: list[dict]) -> list[str]:
    return [r["question"] + "\n" + r["answer"] for r in rows]


def save(
    out_dir: Path, rows: list[dict], arch: dict = TINY, *, pad: bool = True, vocab_size: int = 1000, seed: int = 0
) -> Path:
    """Build and save the stand-in (bf16 weights, tokenizer, generation_config) into `out_dir`."""
    import torch

    tokenizer = build_tokenizer(gsm8k_texts(rows), vocab_size, pad=pad)
    model = build_model(tokenizer, arch, seed).to(torch.bfloat16)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
