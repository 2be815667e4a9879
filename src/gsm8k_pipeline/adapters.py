"""LoRA adapters that know their base: base.json in the adapter folder records the base folder's path
*relative to the adapter* (so the adapter loads from any working directory, and from a moved checkout)
and the base's content hash (so it refuses to load onto a different model).

PEFT's own adapter_config.json records the base as the path it was loaded from (`models/base/model`,
relative to the working directory), which breaks elsewhere and silently picks up whatever is there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import PipelineError
from .fileio import content_hash

BASE_FILE = "base.json"


def is_adapter(model_dir: Path) -> bool:
    return (Path(model_dir) / "adapter_config.json").exists()


def base_folder(model_dir: Path) -> Path:
    """The full-weights folder under `model_dir`: itself, or the (checked) base of an adapter."""
    model_dir = Path(model_dir)
    if not is_adapter(model_dir):
        return model_dir
    base, record = base_path(model_dir)
    found = content_hash(base)
    if found != record["sha256"]:
        raise PipelineError(
            f"{model_dir}: adapter trained on base sha256 {record['sha256'][:12]}, but {base} "
            f"holds a different model (sha256 {found[:12]})"
        )
    return base


# What marks a checkout's root.
CHECKOUT_MARKERS = (".git", ".dvc", "dvc.yaml", "Snakefile")


def checkout_of(model_dir: Path) -> Path:
    """The checkout a model folder lies in: its nearest ancestor holding a CHECKOUT_MARKERS entry, else the
    folder holding its nearest `models/` ancestor, else the working directory (where stages run). So an
    adapter loads from any working directory, yet its base is always a folder of its own checkout."""
    parents = Path(model_dir).resolve().parents
    for folder in parents:
        if any((folder / marker).exists() for marker in CHECKOUT_MARKERS):
            return folder
    models = next((folder for folder in parents if folder.name == "models"), None)
    return models.parent if models is not None else Path.cwd().resolve()


def base_path(model_dir: Path) -> tuple[Path, dict]:
    """(the base folder an adapter's base.json names, the record), checked to be a folder of the checkout
    but not hashed (base_folder does that)."""
    model_dir = Path(model_dir)
    record_path = model_dir / BASE_FILE
    if not record_path.exists():
        raise PipelineError(f"{model_dir}: adapter without {BASE_FILE}; retrain it with this version")
    record = _read_record(record_path)
    base = (model_dir / record["path"]).resolve()
    # Adapters arrive from other agents (`gsm8k artifacts get`): the file must not make a stage read and
    # hash whatever it names. The base is a model folder of the adapter's own checkout.
    root = checkout_of(model_dir)
    if Path(record["path"]).is_absolute() or (base != root and root not in base.parents):
        raise PipelineError(
            f"{record_path}: path {record['path']!r} leads outside the checkout ({root}); an adapter's base "
            "is a model folder of the checkout, relative to the adapter"
        )
    if not base.is_dir():
        raise PipelineError(f"{model_dir}: its base model {base} is missing (base sha256 {record['sha256'][:12]})")
    return base, record


def _read_record(record_path: Path) -> dict:
    """base.json's {"path", "sha256"}, or a one-line error naming the file."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PipelineError(f"{record_path}: not a readable JSON file ({' '.join(str(exc).split())})") from None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("path"), str)
        and record["path"]
        and isinstance(record.get("sha256"), str)
    ):
        raise PipelineError(f"{record_path}: needs a non-empty string `path` and a string `sha256`")
    return record


def record_base(adapter_dir: Path, base: Path, final_dir: Path | None = None) -> None:
    """Write base.json into `adapter_dir`, relative to where the adapter will finally live (`final_dir`,
    a sibling of a temp `adapter_dir`, so the relative path is the same)."""
    base = Path(base).resolve()
    final_dir = Path(final_dir or adapter_dir).resolve()
    record = {"path": os.path.relpath(base, final_dir), "sha256": content_hash(base)}
    (Path(adapter_dir) / BASE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    # PEFT wrote the path the base was loaded from (cwd-relative or absolute: it differs between checkouts
    # and engines); the same adapter-relative path instead, so identical training gives identical files.
    config_path = Path(adapter_dir) / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = record["path"]
    if isinstance(config.get("target_modules"), list):  # PEFT writes a set, in hash-randomised order
        config["target_modules"] = sorted(config["target_modules"])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # PEFT's placeholder model card names that same path in its front matter.
    (Path(adapter_dir) / "README.md").unlink(missing_ok=True)


def load_adapter_model(adapter_dir: Path, *, dtype, is_trainable: bool = False):
    """A PeftModel: the adapter in `adapter_dir` on its recorded (and verified) base."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = base_folder(adapter_dir)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(folder, dtype=dtype), str(adapter_dir), is_trainable=is_trainable
    )
    # The adapter-relative path from adapter_config.json means nothing from the working directory, where
    # PEFT would look for the base's config when saving a further-trained adapter.
    model.peft_config["default"].base_model_name_or_path = str(folder)
    return model
