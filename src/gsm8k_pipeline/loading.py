"""Loading a saved model folder — full weights, or a LoRA adapter on its recorded base (adapters.py) — to run
it (eval, traces) or to train it further (the training stages). Apart from generation.py's decoding loop and
training.py's runs, so an edit to one reruns only the stages that use it.

A checkpoint's generation_config.json (a hub chat model ships sampling and repetition-penalty settings) is
replaced on load: decoding is exactly what params.yaml says.
"""

from __future__ import annotations

from pathlib import Path

from . import PipelineError
from .adapters import is_adapter, load_adapter_model


def ensure_pad_token(tokenizer) -> None:
    """A tokenizer without a pad token pads with EOS (TRL's fallback); padding is masked out anyway."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def plain_generation_config(tokenizer):
    """A generation_config carrying only the stop and pad tokens: nothing of the checkpoint's decoding."""
    from transformers import GenerationConfig

    return GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def load_for_inference(model_path: str | Path, precision: str = "float32"):
    """(model, tokenizer) from a saved model dir — full weights, or a PEFT adapter merged into its base —
    on the GPU when there is one, with weights in `precision` (bf16/fp16 need the GPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .device import device, inference_dtype

    dtype = inference_dtype(precision)  # first: a precision this machine can't run fails before any loading
    model_path = Path(model_path)
    if not model_path.is_dir():
        raise PipelineError(f"{model_path}: no such model directory")
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
    if not model_path.is_dir():
        raise PipelineError(f"{model_path}: no such model directory")
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
