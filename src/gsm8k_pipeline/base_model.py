"""`base_model` stage → models/base/model/: the model every training stage starts from.

`tiny` (the offline default): a byte-level BPE tokenizer trained on the train split only, and a small
Llama with seeded random initialisation. Anything else is a hub model id at a pinned revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError
from .fileio import atomic_dir
from .formatting import FORMAT_TOKENS, prompt_messages, to_target

TINY = "tiny"
PAD, END = "<|pad|>", "<|end|>"
# One turn per role, closed by END, which is also EOS so generation stops after the assistant's turn.
CHAT_TEMPLATE = (
    "{%- for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endfor %}"
    "{%- if add_generation_prompt %}<|assistant|>{% endif %}"
)
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")


@dataclass(frozen=True)
class BaseModelConfig:
    train_file: Path = Path("data/gsm8k/train.jsonl")
    out_dir: Path = Path("models/base")


def _render(messages: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>{m['content']}{END}" for m in messages)


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with every digit its own token, so arithmetic is digit by digit."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, END, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    # The format tokens are atomic (never split) but not `special`: TRL decodes completions with
    # skip_special_tokens=True before computing rewards, and the rewards must see these tags.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in FORMAT_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=END, chat_template=CHAT_TEMPLATE,
        padding_side="left", model_max_length=4096,
    )


def build_tiny(train_rows: list[dict], tiny: dict, seed: int, system: str | None):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    texts = [
        _render(prompt_messages(r["question"], system) + [{"role": "assistant", "content": to_target(r["answer"])}])
        for r in train_rows
    ]
    tokenizer = train_tokenizer(texts, tiny["vocab_size"])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=tiny["hidden_size"],
        intermediate_size=tiny["intermediate_size"],
        num_hidden_layers=tiny["num_hidden_layers"],
        num_attention_heads=tiny["num_attention_heads"],
        num_key_value_heads=tiny["num_attention_heads"],
        max_position_embeddings=tiny["max_position_embeddings"],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def load_hub(name: str, revision: str | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not revision:
        raise PipelineError(f"params.yaml: base_model.revision: hub model {name!r} needs a pinned revision")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(name, revision=revision, dtype="auto")
    except OSError as exc:
        raise PipelineError(
            f"hub unreachable: could not load {name}@{revision} from the Hugging Face hub ({exc}). "
            f"Offline? Use base_model.name: tiny."
        ) from exc
    return model, tokenizer


def main(params: dict, config: BaseModelConfig = BaseModelConfig()) -> Path:
    from .task import read_jsonl

    spec = params["base_model"]
    if spec["name"] == TINY:
        model, tokenizer = build_tiny(
            read_jsonl(config.train_file), spec["tiny"], params["seed"], params["prompt"]["system"]
        )
    else:
        model, tokenizer = load_hub(spec["name"], spec.get("revision"))
    with atomic_dir(config.out_dir) as tmp:
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        info = {
            "name": spec["name"],
            "revision": spec.get("revision"),
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
        }
        (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return config.out_dir
