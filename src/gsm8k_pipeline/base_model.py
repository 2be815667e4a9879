"""`base_model` stage → models/base/model/: the model every training stage starts from.

`tiny` (the offline default): a byte-level BPE tokenizer trained on the train split only, and a small
Llama with seeded random initialisation. Otherwise a local model folder under models/pretrained/ (e.g.
pre-downloaded on a cluster without internet), identified by its content hash, or a hub model id at a pinned
commit. info.json records which, so a result can be traced to the exact weights.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError
from .fileio import atomic_dir, write_manifest
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
    params_file: Path = Path("params.yaml")  # named in errors


# Local model folders live here, so both engines can track their bytes: dvc.yaml declares this folder as a
# dependency of base_model (DVC hashes its content), and the Snakefile passes base_model the selected folder's
# content hash as a param (Snakemake compares only the mtimes of a directory input, not of the files in it).
PRETRAINED = Path("models/pretrained")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def source(spec: dict, params_file: Path, cache_dir: Path | None = None) -> dict:
    """What base_model.name refers to: {"kind": tiny|local|hub, ...}, or a one-line error naming the key."""
    from .fileio import content_hash

    name, revision = spec["name"], spec.get("revision")
    if name == TINY:
        return {"kind": "tiny"}
    if Path(name).is_dir():
        if PRETRAINED.resolve() not in Path(name).resolve().parents:
            raise PipelineError(f"{params_file}: base_model.name: {name} is a local folder outside {PRETRAINED}/; "
                                f"put (or download) the model in a folder under {PRETRAINED}/, where the engines "
                                f"track its content")
        if revision:
            raise PipelineError(f"{params_file}: base_model.revision: {name} is a local folder, identified by its "
                                f"content hash; set revision: null")
        return {"kind": "local", "path": Path(name), "sha256": content_hash(name, cache_dir)}
    if not HUB_ID.match(name):
        raise PipelineError(f"{params_file}: base_model.name: {name!r} is neither `tiny`, a local model folder, "
                            f"nor a hub model id (owner/name)")
    if not revision or not COMMIT.match(revision):
        raise PipelineError(f"{params_file}: base_model.revision: hub model {name!r} needs a pinned revision "
                            f"(a 40-hex commit), not {revision!r}")
    return {"kind": "hub", "name": name, "revision": revision}


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


def identity(spec: dict, params_file: Path = Path("params.yaml"), cache_dir: Path | None = None) -> str:
    """One string that changes whenever the base model's source does: `tiny`, `NAME@REVISION`, or
    `sha256:HASH` of a local folder. The Snakefile passes it to base_model as a param, so that editing a
    local model folder reruns base_model (`cache_dir` keeps hashes of unchanged folders between runs)."""
    origin = source(spec, params_file, cache_dir)
    if origin["kind"] == "hub":
        return f"{origin['name']}@{origin['revision']}"
    return f"sha256:{origin['sha256']}" if origin["kind"] == "local" else TINY


def load_local(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        return AutoModelForCausalLM.from_pretrained(folder, dtype="auto"), AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise PipelineError(f"base_model.name: {folder} is not a loadable model folder ({exc})") from exc


def load_hub(name: str, revision: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    origin = source(spec, config.params_file)
    if origin["kind"] == "tiny":
        model, tokenizer = build_tiny(
            read_jsonl(config.train_file), spec["tiny"], params["seed"], params["prompt"]["system"]
        )
    elif origin["kind"] == "local":
        model, tokenizer = load_local(origin["path"])
    else:
        model, tokenizer = load_hub(origin["name"], origin["revision"])
    with atomic_dir(config.out_dir) as tmp:
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        info = {
            "name": spec["name"],
            "revision": spec.get("revision"),
            "source": origin["kind"],
            "sha256": origin.get("sha256"),  # a local folder's content hash: its identity
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
        }
        (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        write_manifest(tmp / "model")  # what Snakemake checks the folder against (workflow/rules/common.smk)
    return config.out_dir
