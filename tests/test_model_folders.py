"""Issue 20: a model or adapter folder is checked before any library reads it, with one line naming the file
(missing or damaged weights, config or tokenizer; a config.json of 100,000 layers, which transformers would
build for minutes), and an adapter's base.json may name only a model folder of the checkout: adapters arrive
from other agents (`gsm8k artifacts get`), and `evaluate` would read and hash whatever its path names. Real
`gsm8k evaluate` processes on real (tiny) model folders."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import test_params


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A working directory with params, two test problems and a tiny full-weights model in models/base/model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from gsm8k_pipeline.base_model import train_tokenizer

    root = tmp_path_factory.mktemp("folders")
    (root / "params.yaml").write_text(yaml.safe_dump(test_params(lm_eval={"models": []})))
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(2)]
    (root / "data" / "gsm8k").mkdir(parents=True)
    (root / "data" / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokenizer = train_tokenizer([r["question"] + r["answer"] for r in rows], 300)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=128,
    )
    model_dir = root / "models" / "base" / "model"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return root


def empty_safetensors(path: Path) -> None:
    header = b"{}"
    path.write_bytes(len(header).to_bytes(8, "little") + header)


def adapter(checkout: Path, base_path: str, config: str = '{"peft_type": "LORA"}') -> Path:
    folder = checkout / "models" / "arrived" / "model"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy2(checkout / "models/base/model/tokenizer.json", folder)
    shutil.copy2(checkout / "models/base/model/tokenizer_config.json", folder)
    (folder / "adapter_config.json").write_text(config)
    empty_safetensors(folder / "adapter_model.safetensors")
    (folder / "base.json").write_text(json.dumps({"path": base_path, "sha256": "0" * 64}))
    return folder


def bad_record(folder: Path) -> Path:
    (folder / "base.json").write_text('{"path": 5}')
    return folder


def damaged(checkout: Path, damage) -> Path:
    folder = checkout / "models" / "damaged" / "model"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(checkout / "models/base/model", folder)
    damage(folder)
    return folder


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def layers(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 100_000}))


CASES = {
    "truncated weights": (
        lambda c: damaged(c, lambda f: truncate(f / "model.safetensors")),
        r"models/damaged/model/model.safetensors: truncated or padded",
    ),
    "no weights": (
        lambda c: damaged(c, lambda f: (f / "model.safetensors").unlink()),
        r"models/damaged/model: no weights",
    ),
    "bad config.json": (
        lambda c: damaged(c, lambda f: (f / "config.json").write_text("{not json")),
        r"models/damaged/model/config.json: not a readable JSON file",
    ),
    "no tokenizer": (
        lambda c: damaged(c, lambda f: (f / "tokenizer.json").unlink()),
        r"models/damaged/model: no tokenizer",
    ),
    "100,000 layers": (
        lambda c: damaged(c, layers),
        r"models/damaged/model/config.json: num_hidden_layers is 100000, but model.safetensors holds 1 layers",
    ),
    "base.json absolute": (
        lambda c: adapter(c, "/"),
        r"models/arrived/model/base.json: path '/' leads outside the checkout",
    ),
    "base.json climbing out": (
        lambda c: adapter(c, "../../../../../../../../usr/lib/python3"),
        r"models/arrived/model/base.json: path '\.\./.*python3' leads outside the checkout",
    ),
    "bad base.json": (
        lambda c: bad_record(adapter(c, "../../base/model")),
        r"models/arrived/model/base.json: needs a non-empty string `path` and a string `sha256`",
    ),
    "bad adapter_config.json": (
        lambda c: adapter(c, "../../base/model", config="[1, 2"),
        r"models/arrived/model/adapter_config.json: not a readable JSON file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_model_folder_is_one_line_naming_the_file_and_nothing_is_written(checkout, case):
    make, expected = CASES[case]
    folder = make(checkout).relative_to(checkout)
    out = checkout / "metrics" / case.replace(" ", "_").replace(",", "")
    proc = subprocess.run(
        ["gsm8k", "evaluate", "--model-path", str(folder), "--output-dir", str(out), "--output-file", "m.json"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    import re

    assert re.search(r"^gsm8k evaluate: error: " + expected, errors[0]), errors[0]
    assert not (out / "m.json").exists()


def base_model(checkout: Path, folder: Path) -> subprocess.CompletedProcess:
    params = yaml.safe_load((checkout / "params.yaml").read_text())
    params["base_model"]["name"] = str(folder.relative_to(checkout))
    (checkout / "local.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        ["gsm8k", "base-model", "--params", "local.yaml", "--out-dir", "models/local_base"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_local_pretrained_folder_with_a_nan_weight_is_not_published(checkout):
    """base-model published a local folder holding a NaN weight with rc 0 (issue 20, item 8)."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = checkout / "models" / "pretrained" / "nan"
    shutil.copytree(checkout / "models/base/model", folder)
    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name].view(-1)[0] = torch.nan
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    proc = base_model(checkout, folder)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "base_model.name: models/pretrained/nan: weight " in errors[0], proc.stderr
    assert "holds a NaN or an infinity" in errors[0]
    assert not (checkout / "models" / "local_base").exists()


def test_a_damaged_local_pretrained_folder_is_one_line(checkout):
    folder = checkout / "models" / "pretrained" / "cut"
    shutil.copytree(checkout / "models/base/model", folder)
    truncate(folder / "model.safetensors")
    proc = base_model(checkout, folder)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "base_model.name: models/pretrained/cut/model.safetensors: truncated or padded" in proc.stderr
    assert not (checkout / "models" / "local_base").exists()
    # ... and check-params says so first, before DVC would remove models/base.
    proc = subprocess.run(
        ["gsm8k", "check-params", "--params", "local.yaml"], cwd=checkout, capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "local.yaml: base_model.name: models/pretrained/cut/model.safetensors: truncated" in proc.stderr


def test_train_sft_into_a_folder_it_cannot_replace_refuses_before_training(checkout):
    """A direct train-sft into a read-only model/ trained fully, then failed with a traceback, deleted
    train_log.csv and left the old model looking current (issue 20): it refuses before training, one line
    naming the file, and the old model and its log stay as they were, together. An immutable folder
    (chattr +i) stands for a read-only one, which root (the test machine's user) could still write."""
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(4)]
    (checkout / "data" / "gsm8k" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = checkout / "models" / "readonly"
    (out / "model").mkdir(parents=True)
    (out / "model" / "model.safetensors").write_text("the old model")
    (out / "train_log.csv").write_text("the old log")
    if subprocess.run(["chattr", "+i", str(out / "model")], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        proc = subprocess.run(
            ["gsm8k", "train-sft", "--stage", "prep", "--output-dir", str(out.relative_to(checkout))],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=300,
            env={**__import__("os").environ, "PREP_TRAIN_SAMPLES": "4"},
        )
    finally:
        subprocess.run(["chattr", "-i", str(out / "model")], check=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "cannot replace the previous result (Operation not permitted)" in errors[0]
    assert "trained to step" not in proc.stdout
    assert (out / "model" / "model.safetensors").read_text() == "the old model"
    assert (out / "train_log.csv").read_text() == "the old log"
