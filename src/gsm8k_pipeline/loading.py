"""Loading a saved model folder — full weights, or a LoRA adapter on its recorded base (adapters.py) — to run
it (eval, traces) or to train it further (the training stages). Apart from generation.py's decoding loop and
training.py's runs, so an edit to one reruns only the stages that use it.

A checkpoint's generation_config.json (a hub chat model ships sampling and repetition-penalty settings) is
replaced on load: decoding is exactly what params.yaml says.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import PipelineError
from .adapters import base_path, is_adapter, load_adapter_model


def ensure_pad_token(tokenizer) -> None:
    """A tokenizer without a pad token pads with EOS (TRL's fallback); padding is masked out anyway."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def plain_generation_config(tokenizer):
    """A generation_config carrying only the stop and pad tokens: nothing of the checkpoint's decoding."""
    from transformers import GenerationConfig

    return GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


# What a model folder must hold before any library reads it: the libraries fail on a missing or damaged
# file with a stack of their own, and on a config.json of 100,000 layers they build them all (minutes).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def _json_file(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PipelineError(f"{path}: not a readable JSON file ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: not a JSON object")
    return data


def safetensors_names(path: Path) -> list[str]:
    """The tensor names of a safetensors file, once its header and size check out; a one-line error naming
    the file when it is truncated or not safetensors (the library's own error is a stack trace)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n <= 0 or 8 + n > size:
            raise PipelineError(f"{path}: not a complete safetensors file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise PipelineError(f"{path}: not a safetensors file (unreadable header)") from None
    if 8 + n + end != size:
        raise PipelineError(f"{path}: truncated or padded: {size} bytes, its header describes {8 + n + end}")
    return [k for k in header if k != "__metadata__"]


def check_folder(model_path: Path) -> None:
    """One line naming the file when `model_path` is not a complete model folder: full weights (config.json,
    weights, tokenizer) or a LoRA adapter (adapter_config.json, base.json and its base, adapter weights,
    tokenizer)."""
    model_path = Path(model_path)
    if not model_path.is_dir():
        raise PipelineError(f"{model_path}: no such model directory")
    if not any((model_path / name).is_file() for name in TOKENIZER_FILES):
        raise PipelineError(f"{model_path}: no tokenizer ({' or '.join(TOKENIZER_FILES)})")
    if is_adapter(model_path):
        _json_file(model_path / "adapter_config.json")
        weights = [model_path / n for n in ADAPTER_WEIGHTS if (model_path / n).is_file()]
        if not weights:
            raise PipelineError(f"{model_path}: adapter without weights ({' or '.join(ADAPTER_WEIGHTS)})")
        if weights[0].suffix == ".safetensors":
            safetensors_names(weights[0])
        check_folder(base_path(model_path)[0])  # base.json: confined, and its base complete (hashed on load)
        return
    config = _json_file(model_path / "config.json")
    weights = [model_path / n for n in WEIGHTS_FILES if (model_path / n).is_file()]
    if not weights:
        raise PipelineError(f"{model_path}: no weights ({' or '.join(WEIGHTS_FILES)})")
    if weights[0].name == "model.safetensors":
        names = safetensors_names(weights[0])
        layers = {int(m[1]) for m in (re.search(r"\.layers\.(\d+)\.", n) for n in names) if m}
        declared = config.get("num_hidden_layers")
        if layers and isinstance(declared, int) and declared != len(layers):
            raise PipelineError(
                f"{model_path / 'config.json'}: num_hidden_layers is {declared}, but {weights[0].name} holds "
                f"{len(layers)} layers"
            )


def load_for_inference(model_path: str | Path, precision: str = "float32"):
    """(model, tokenizer) from a saved model dir — full weights, or a PEFT adapter merged into its base —
    on the GPU when there is one, with weights in `precision` (bf16/fp16 need the GPU)."""
    from .device import device, inference_dtype

    dtype = inference_dtype(precision)  # first: a precision this machine can't run fails before any loading
    model_path = Path(model_path)
    check_folder(model_path)  # before transformers' imports (about 1.5 s): a damaged folder is named without them
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    ensure_pad_token(tokenizer)
    if is_adapter(model_path):
        model = load_adapter_model(model_path, dtype=dtype).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    model.generation_config = plain_generation_config(tokenizer)
    model.to(device())
    model.eval()
    return model, tokenizer


def load_trainable(model_path: Path, params: dict):
    """(model, tokenizer, peft_config) to train from `model_path`, in float32 master weights whatever the
    checkpoint's dtype (bf16/fp16 compute comes from the Trainer's autocast: params `precision`).

    With LoRA on: a dir holding an adapter (e.g. prep_sft's) keeps training that adapter, so every saved
    adapter applies to the base model directly; full weights get a new adapter from params.lora.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .device import check_precision

    check_precision(params["precision"])  # before minutes of loading, not in the Trainer's traceback
    check_folder(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    ensure_pad_token(tokenizer)
    lora = params["lora"]
    peft_config = None
    if is_adapter(model_path):
        model = load_adapter_model(model_path, dtype=torch.float32, is_trainable=lora["enabled"])
        if not lora["enabled"]:
            model = model.merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        if lora["enabled"]:
            from peft import LoraConfig

            check_lora_targets(model, lora["target_modules"], model_path)

            peft_config = LoraConfig(
                r=lora["r"],
                lora_alpha=lora["alpha"],
                lora_dropout=lora["dropout"],
                target_modules=lora["target_modules"],
                task_type="CAUSAL_LM",
            )
    # The checkpoint's sampling/penalty settings must not leak into GRPO's sampling or the saved model.
    model.generation_config = plain_generation_config(tokenizer)
    return model, tokenizer, peft_config


def check_lora_targets(model, targets: list[str], model_path: Path) -> None:
    """Every lora.target_modules entry must name modules of the model, as PEFT matches them (a module's
    full name or a dotted suffix of it): PEFT fails with a traceback when none match, and silently skips
    the ones that don't when others do."""
    import torch

    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise PipelineError(
            f"lora.target_modules: {', '.join(map(repr, missing))} match no module of "
            f"{model_path} (its linear modules: {', '.join(linear)})"
        )
