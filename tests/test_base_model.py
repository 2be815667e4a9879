from pathlib import Path

import pytest

from conftest import test_params
from gsm8k_pipeline import PipelineError, base_model
from gsm8k_pipeline.formatting import FORMAT_TOKENS, prompt_messages, to_target
from gsm8k_pipeline.synthetic import generate_splits


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    params = test_params()
    train, _ = generate_splits(200, 10, 0)
    model, tokenizer = base_model.build_tiny(train, params["base_model"]["tiny"], seed=1, system=None)
    out = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, train


def test_tiny_model_and_tokenizer_load_with_auto_classes(saved_tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, train = saved_tiny
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token == "<|pad|>"


def test_format_tokens_are_atomic_and_survive_decoding(saved_tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(saved_tiny[0])
    target = to_target("Ann has 3+4=<<3+4=7>>7 pens.\n#### 7")
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert all(t in tokens for t in FORMAT_TOKENS)
    # TRL decodes completions with skip_special_tokens=True before rewarding them.
    assert tokenizer.decode(ids, skip_special_tokens=True) == target


def test_digits_are_single_tokens(saved_tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(saved_tiny[0])
    tokens = tokenizer.tokenize("1234+56")
    assert [t for t in tokens if t.isdigit()] == list("123456")


def test_chat_template_ends_with_the_assistant_turn(saved_tiny):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(saved_tiny[0])
    text = tokenizer.apply_chat_template(
        prompt_messages("How many?", "Be brief."), tokenize=False, add_generation_prompt=True
    )
    assert text == "<|system|>Be brief.<|end|><|user|>How many?<|end|><|assistant|>"


def test_same_seed_same_weights(saved_tiny):
    import torch

    params = test_params()
    train = saved_tiny[1]
    a, _ = base_model.build_tiny(train, params["base_model"]["tiny"], seed=1, system=None)
    b, _ = base_model.build_tiny(train, params["base_model"]["tiny"], seed=1, system=None)
    c, _ = base_model.build_tiny(train, params["base_model"]["tiny"], seed=2, system=None)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


@pytest.mark.parametrize(
    "name, revision, message",
    [
        (
            "Qwen/Qwen2.5-0.5B-Instruct",
            None,
            "base_model.revision: hub model 'Qwen/Qwen2.5-0.5B-Instruct' needs a pinned",
        ),
        ("Qwen/Qwen2.5-0.5B-Instruct", "main", "needs a pinned revision (a 40-hex commit), not 'main'"),
        ("my-made-up-model", None, "base_model.name: 'my-made-up-model' is neither `tiny`, a local model folder"),
    ],
)
def test_base_model_must_be_pinned_or_local_and_errors_name_the_params_file(name, revision, message):
    with pytest.raises(PipelineError, match="^configs/mine.yaml: ") as err:
        base_model.source({"name": name, "revision": revision}, Path("configs/mine.yaml"))
    assert message in str(err.value)


def test_a_local_folder_is_loaded_and_its_content_hash_recorded(saved_tiny, tmp_path, monkeypatch):
    import json
    import shutil

    monkeypatch.chdir(tmp_path)  # stages run at the checkout's root, where models/pretrained/ is
    folder = Path("models/pretrained/pre-downloaded")
    shutil.copytree(saved_tiny[0], folder)
    params = test_params(base_model={"name": str(folder), "revision": None})
    out = base_model.main(params, base_model.BaseModelConfig(out_dir=tmp_path / "base"))
    info = json.loads((out / "info.json").read_text())
    assert info["source"] == "local" and info["name"] == str(folder) and len(info["sha256"]) == 64
    assert (out / "model" / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    # An edit to the folder changes its identity, with or without the hash cache the Snakefile uses.
    cache = tmp_path / "hash-cache"
    assert base_model.identity(params["base_model"], cache_dir=cache) == "sha256:" + info["sha256"]
    (folder / "tokenizer_config.json").write_text((folder / "tokenizer_config.json").read_text() + " ")
    edited = base_model.source(params["base_model"], Path("p.yaml"))["sha256"]
    assert edited != info["sha256"]
    assert base_model.identity(params["base_model"], cache_dir=cache) == "sha256:" + edited
    with pytest.raises(PipelineError, match="revision: .* is a local folder"):
        base_model.source({"name": str(folder), "revision": "a" * 40}, Path("p.yaml"))


def test_a_local_folder_outside_models_pretrained_is_refused(saved_tiny, tmp_path, monkeypatch):
    # The engines track models/pretrained/ only: a folder elsewhere could change without rerunning anything.
    monkeypatch.chdir(tmp_path)
    for folder in (tmp_path / "elsewhere", Path("models/pretrained")):
        folder.mkdir(parents=True)
        with pytest.raises(PipelineError, match=r"p\.yaml: base_model\.name: .* outside models/pretrained/"):
            base_model.source({"name": str(folder), "revision": None}, Path("p.yaml"))


def test_both_engines_rerun_base_model_when_a_local_folders_bytes_change(saved_tiny, tmp_path):
    """Snakemake (its content-hash param) and DVC (its hash of models/pretrained) each notice an in-place
    edit to a file of the local base model, and nothing else."""
    import shutil

    from conftest import make_checkout, run
    from engines import dvc_stale, snakemake_plan

    name = "models/pretrained/local-model"
    params = test_params(base_model={"name": name, "revision": None})
    repos = {}
    for engine, build in (
        ("snakemake", ["snakemake", "--cores", "1", "models/base/info.json"]),
        ("dvc", ["dvc", "repro", "base_model"]),
    ):
        repo = make_checkout(tmp_path / engine, params)
        shutil.copytree(saved_tiny[0], repo / name)
        run(build, repo)
        repos[engine] = repo
    smk, dvc = repos["snakemake"], repos["dvc"]
    assert snakemake_plan(smk, "models/base/info.json") == set()
    assert "base_model" not in dvc_stale(dvc)

    for repo in (smk, dvc):  # same size, same directory entries: only the bytes differ
        weights = repo / name / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
    assert snakemake_plan(smk, "models/base/info.json") == {"base_model"}
    assert "base_model" in dvc_stale(dvc)


@pytest.mark.parametrize("pad", [True, False], ids=["pad", "no_pad"])
def test_base_model_checks_the_tokenizer_of_every_source(tmp_path, pad):
    """A hub-shaped local folder, with and without a pad token (many Llama tokenizers have none): EOS is the
    chat template's turn end already, and a missing pad token becomes EOS, said in info.json. The tiny
    model's tokenizer needs nothing."""
    import json
    import subprocess

    import yaml
    from transformers import AutoTokenizer

    from hub import build

    build(tmp_path / "models/pretrained/hub", pad=pad)
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(test_params(base_model={"name": "models/pretrained/hub", "revision": None}))
    )
    subprocess.run(["gsm8k", "base-model"], cwd=tmp_path, check=True, capture_output=True)
    info = json.loads((tmp_path / "models/base/info.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "models/base/model")
    assert info["eos_token"] == tokenizer.eos_token == "<|im_end|>"
    if pad:
        assert info["tokenizer_fixes"] == [] and tokenizer.pad_token == info["pad_token"] != "<|im_end|>"
    else:
        assert info["tokenizer_fixes"] == ["pad_token None -> '<|im_end|>': padding must be defined (it is masked out)"]
        assert tokenizer.pad_token == "<|im_end|>"


def test_tiny_tokenizer_needs_no_fixes(saved_tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, _ = saved_tiny
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert base_model.turn_closer(tokenizer) == "<|end|>"
    assert base_model.special_token_fixes(AutoModelForCausalLM.from_pretrained(path), tokenizer) == []
