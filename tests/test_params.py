import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, test_params
from gsm8k_pipeline import params


def write(tmp_path, data) -> Path:
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
    with pytest.raises(
        params.ParamsError, match=r"params.yaml: eval.batch_size: 'thirty-two' is not of type 'integer'"
    ):
        params.load(write(tmp_path, bad))


def test_bad_source_is_named(tmp_path):
    bad = test_params(data={"source": "s3://nope"})
    with pytest.raises(params.ParamsError, match=r"data.source"):
        params.load(write(tmp_path, bad))


def test_cli_fails_before_work_naming_the_key(tmp_path):
    bad = test_params()
    bad["data"]["synthetic"]["n_train"] = -3
    path = write(tmp_path, bad)
    proc = subprocess.run(
        ["gsm8k", "download", "--params", str(path), "--out-dir", str(tmp_path / "out")], capture_output=True, text=True
    )
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


def test_precedence_command_line_then_environment_then_params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(test_params(prep_sft={"samples": 10})))
    resolve = lambda env={}, cli=None: params.resolve(path, cli, environ=env)  # noqa: E731
    assert resolve()["prep_sft"]["samples"] == 10  # params.yaml
    assert resolve({"PREP_TRAIN_SAMPLES": "20"})["prep_sft"]["samples"] == 20  # environment beats params
    assert resolve({"PREP_TRAIN_SAMPLES": "20"}, {"prep_sft.samples": 5})["prep_sft"]["samples"] == 5  # CLI beats both
    assert resolve({"TRAIN_SAMPLES": "8", "OUTPUT_DIR": "out"})["run"] == {
        "samples": 8,
        "output_dir": "out",
        "learning_rate": None,
    }
    assert resolve()["run"] == {"samples": None, "output_dir": None, "learning_rate": None}


@pytest.mark.parametrize(
    "env, cli, message",
    [
        (
            {"EVAL_SAMPLES": "seven"},
            None,
            "eval.samples: 'seven' is not of type 'integer', 'null' (set by environment variable EVAL_SAMPLES)",
        ),
        (
            {"NUM_GENERATIONS": "1"},
            None,
            "grpo.num_generations: 1 is less than the minimum of 2 (set by environment variable NUM_GENERATIONS)",
        ),
        ({}, {"run.samples": 0}, "run.samples: 0 is less than the minimum of 1 (set by the command line)"),
        (
            {},
            {"traces.temperature": -1.0},
            "traces.temperature: -1.0 is less than or equal to the minimum of 0 (set by the command line)",
        ),
    ],
)
def test_overrides_are_validated_like_the_file(tmp_path, env, cli, message):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(test_params()))
    with pytest.raises(params.ParamsError) as err:
        params.resolve(path, cli, environ=env)
    assert message in str(err.value)


def test_run_is_not_a_params_file_section(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(test_params() | {"run": {"samples": 3}}))
    with pytest.raises(params.ParamsError, match="run: is set by the command line or environment"):
        params.resolve(path)


def test_duplicate_keys_and_bad_bytes_are_one_line_errors(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(test_params()) + "seed: 7\n")
    proc = subprocess.run(["gsm8k", "check-params", "--params", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "duplicate key 'seed'" in proc.stderr and str(path) in proc.stderr
    path.write_bytes(b"seed: \xff\n")
    proc = subprocess.run(["gsm8k", "check-params", "--params", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        # The fault probe's findings: each passed check-params, then trained to inf weights or crashed.
        ("prep_sft", "learning_rate", float("nan"), "prep_sft.learning_rate: nan is not a finite number"),
        (
            "full_sft",
            "learning_rates",
            [1e-3, 1e308],
            "full_sft.learning_rates.1: 1e+308 is greater than the maximum of 1",
        ),
        ("grpo", "learning_rates", [], "grpo.learning_rates: [] should be non-empty"),
        ("eval", "max_new_tokens", 1e30, "eval.max_new_tokens: 1e+30 is greater than the maximum of 32768"),
        ("grpo", "rewards", {"correctness": float("-inf")}, "grpo.rewards.correctness: -inf is not a finite number"),
        (
            "data",
            "synthetic",
            {"min_steps": 4, "max_steps": 2},
            "data.synthetic.min_steps (4) is greater than data.synthetic.max_steps (2)",
        ),
        ("train", "save_steps", 5, "train.save_steps (5) is not a multiple of train.logging_steps (2)"),
        (
            "eval",
            "boosters",
            {"samples_per_problem": 2, "k": 3},
            "eval.boosters.k (3) exceeds eval.boosters.samples_per_problem (2)",
        ),
        # The second probe's: each passed check-params, then `dvc repro` removed the stage's outputs before
        # the stage refused (issue 20, item 2), or lm-eval was turned off in silence (item 7).
        (
            "lm_eval",
            "max_gen_toks",
            1000,
            "lm_eval.max_gen_toks (1000) leaves no room for a prompt in the model's context of 512 tokens "
            "(base_model.tiny.max_position_embeddings)",
        ),
        (
            "base_model",
            "name",
            "org/na me",
            "base_model.name: 'org/na me' is neither `tiny`, a local model folder, nor a hub model id",
        ),
        (
            "base_model",
            "tiny",
            {"hidden_size": 30, "num_attention_heads": 4},
            "base_model.tiny.hidden_size (30) is not a multiple of base_model.tiny.num_attention_heads (4)",
        ),
        ("prompt", "system", "x" * 200_000, "prompt.system: 200000 characters, more than the maximum of 10000"),
        ("lm_eval", "models", ["prep-sft"], "lm_eval.models: 'prep-sft' matches no model of the DAG (base, prep_sft"),
    ],
)
def test_check_params_refuses_what_would_fail_later_in_one_line(tmp_path, section, key, value, message):
    bad = test_params(train={"logging_steps": 2, "save_steps": 4})
    bad[section][key] = bad[section][key] | value if isinstance(value, dict) else value
    path = write(tmp_path, bad)
    proc = subprocess.run(["gsm8k", "check-params", "--params", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"gsm8k check-params: error: {path}: {message}")


@pytest.mark.parametrize(
    "env, cli, message",
    [
        (
            {"EVAL_SAMPLES": ".inf"},
            None,
            "eval.samples: inf is not a finite number (set by environment variable EVAL_SAMPLES)",
        ),
        (
            {},
            {"traces.temperature": float("nan")},
            "traces.temperature: nan is not a finite number (set by the command line)",
        ),
    ],
)
def test_non_finite_overrides_name_their_origin(tmp_path, env, cli, message):
    path = write(tmp_path, test_params())
    with pytest.raises(params.ParamsError) as err:
        params.resolve(path, cli, environ=env)
    assert message in str(err.value)


@pytest.mark.parametrize("configfile", [[], ["--configfile", "extra.yaml"]])
def test_snakemake_refuses_duplicate_keys_like_gsm8k(tmp_path, configfile):
    """Snakemake's own YAML loader keeps the last of a duplicated key (DVC refuses the file): the workflow
    reads every config file as `gsm8k` does first, and fails with the same line."""
    from conftest import make_checkout

    repo = make_checkout(tmp_path / "repo", test_params())
    name = configfile[1] if configfile else "params.yaml"
    text = (repo / "params.yaml").read_text() if not configfile else "eval:\n  samples: 4\n"
    (repo / name).write_text(text + "eval:\n  samples: 5\n")  # `eval` twice, each valid
    expected = (
        subprocess.run(["gsm8k", "check-params", "--params", name], cwd=repo, capture_output=True, text=True)
        .stderr.strip()
        .removeprefix("gsm8k check-params: error: ")
    )
    assert expected.startswith(f"{name}: not valid YAML: duplicate key 'eval'")
    proc = subprocess.run(["snakemake", "-n", "--cores", "1", *configfile], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"snakemake: error: {expected}" in proc.stderr, proc.stderr


def test_check_params_refuses_a_precision_this_machine_cannot_compute_in(tmp_path):
    """bf16 on a machine without a GPU passed check-params, then `dvc repro` removed models/prep_sft/model
    before train-sft refused (issue 20, item 2): the machine is checked with the params, and the check's
    output is removed so that no stage runs after it."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU computes in bf16")
    path = write(tmp_path, test_params(precision="bf16"))
    out = tmp_path / "data" / "params.ok"
    out.parent.mkdir()
    out.write_text("from an earlier check")
    proc = subprocess.run(
        ["gsm8k", "check-params", "--params", str(path), "--output", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"gsm8k check-params: error: {path}: precision: bf16 needs a CUDA GPU")
    assert not out.exists()
    # Snakemake checks it as it starts (onstart), for jobs it runs here (it removes a job's outputs first).
    from conftest import make_checkout

    repo = make_checkout(tmp_path / "repo", test_params(precision="bf16"))
    proc = subprocess.run(["snakemake", "--cores", "1", "data/params.ok"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1 and "precision: bf16 needs a CUDA GPU" in proc.stderr  # the preflight's warning
    assert "snakemake: error: preflight: this machine can't run these params (no GPU" in proc.stderr
    assert not (repo / "data").exists()
    # A dry run runs nothing here: the GPU configuration still validates and dry-runs on a CPU machine.
    proc = subprocess.run(["snakemake", "-n", "--cores", "1"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("seed", -1, "seed: -1 is less than the minimum of 0"),
        ("seed", 2**32, "seed: 4294967296 is greater than the maximum of 2147483647"),
        ("seeds", [0, 2**40], "seeds.1: 1099511627776 is greater than the maximum of 2147483647"),
    ],
)
def test_seeds_numpy_and_torch_refuse_are_refused_by_check_params(tmp_path, key, value, message):
    """A negative seed or one of 2**32 passed check-params, then failed in numpy with a traceback."""
    path = write(tmp_path, test_params(**{key: value}))
    proc = subprocess.run(["gsm8k", "check-params", "--params", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"gsm8k check-params: error: {path}: {message}")


def test_a_yaml_alias_bomb_is_refused_at_once_naming_the_file(tmp_path):
    """1 KB of nested aliases took check-params 41 s at 8 levels, over a minute at 9 (issue 20, item 9)."""
    levels = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 10):
        levels.append(f"{'abcdefghij'[i]}: &{'abcdefghij'[i]} [{', '.join(['*' + 'abcdefghij'[i - 1]] * 9)}]")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(test_params()) + "\n".join(levels) + "\n")
    assert path.stat().st_size < 50_000
    started = time.monotonic()
    proc = subprocess.run(["gsm8k", "check-params", "--params", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{path}: more than 100,000 values once its aliases" in proc.stderr
    assert time.monotonic() - started < 20  # the process starting, not the bomb


def test_a_recursive_alias_is_one_line_too(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a: &a [*a]\n")
    with pytest.raises(params.ParamsError, match="once its aliases"):
        params.read(path)
