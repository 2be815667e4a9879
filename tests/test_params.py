import subprocess

import pytest
import yaml

from conftest import REPO, test_params
from gsm8k_pipeline import params


def write(tmp_path, data) -> "Path":
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_params_validate():
    assert params.load(REPO / "params.yaml")["data"]["source"] == "synthetic"


def test_unknown_key_is_named(tmp_path):
    bad = test_params()
    bad["eval"]["max_new_tokns"] = 5
    with pytest.raises(params.ParamsError, match=r"eval: unknown key\(s\) 'max_new_tokns'"):
        params.load(write(tmp_path, bad))


def test_wrong_type_is_named(tmp_path):
    bad = test_params()
    bad["eval"]["batch_size"] = "thirty-two"
    with pytest.raises(params.ParamsError, match=r"params.yaml: eval.batch_size: 'thirty-two' is not of type 'integer'"):
        params.load(write(tmp_path, bad))


def test_bad_source_is_named(tmp_path):
    bad = test_params(data={"source": "s3://nope"})
    with pytest.raises(params.ParamsError, match=r"data.source"):
        params.load(write(tmp_path, bad))


def test_cli_fails_before_work_naming_the_key(tmp_path):
    bad = test_params()
    bad["data"]["synthetic"]["n_train"] = -3
    path = write(tmp_path, bad)
    proc = subprocess.run(["gsm8k", "download", "--params", str(path), "--out-dir", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "data.synthetic.n_train" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_snakemake_validates_params(tmp_path):
    from conftest import make_checkout

    bad = test_params()
    bad["base_model"]["tiny"]["hidden_size"] = 1.5
    repo = make_checkout(tmp_path / "repo", bad)
    proc = subprocess.run(["snakemake", "-n", "--cores", "1"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "hidden_size" in proc.stdout + proc.stderr


def test_env_int(monkeypatch):
    monkeypatch.setenv("EVAL_SAMPLES", "7")
    assert params.env_int("EVAL_SAMPLES", 3) == 7
    monkeypatch.setenv("EVAL_SAMPLES", "seven")
    with pytest.raises(params.ParamsError, match="EVAL_SAMPLES"):
        params.env_int("EVAL_SAMPLES", 3)
    monkeypatch.delenv("EVAL_SAMPLES")
    assert params.env_int("EVAL_SAMPLES", 3) == 3


def test_precedence_command_line_then_environment_then_params(tmp_path, monkeypatch):
    from pathlib import Path

    from gsm8k_pipeline.synthetic import generate_splits
    from gsm8k_pipeline.train_sft import SFTStageConfig, examples

    train, _ = generate_splits(30, 2, 0)
    (tmp_path / "train.jsonl").write_text("".join(__import__("json").dumps(r) + "\n" for r in train))
    p = test_params(prep_sft={"samples": 10})
    config = lambda samples=None: SFTStageConfig(stage="prep", output_dir=Path("x"), base_model=Path("y"),  # noqa: E731
                                                 train_file=tmp_path / "train.jsonl", samples=samples)
    monkeypatch.delenv("PREP_TRAIN_SAMPLES", raising=False)
    assert len(examples(config(), p)) == 10            # params.yaml
    monkeypatch.setenv("PREP_TRAIN_SAMPLES", "20")
    assert len(examples(config(), p)) == 20            # environment beats params
    assert len(examples(config(samples=5), p)) == 5    # command line beats both
