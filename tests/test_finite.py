"""What a training stage publishes: never non-finite weights, folders the group can read, and a
train_log.csv that does not depend on whether the run was killed and resumed. Real TRL runs of a
test-sized model, through the `gsm8k` command where a process must die."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import yaml

from conftest import test_params

# Wall-clock figures: they differ between any two runs, resumed or not.


def gsm8k(cwd, *args, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(["gsm8k", *args], cwd=cwd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """params.yaml (12 prep steps of 8 examples, a checkpoint every 2), data and the tiny base model."""
    root = tmp_path_factory.mktemp("finite")
    (root / "params.yaml").write_text(yaml.safe_dump(test_params(prep_sft={"samples": 48, "epochs": 2})))
    gsm8k(root, "download")
    gsm8k(root, "base-model")
    return root


def load_params(root, **override):
    from gsm8k_pipeline import params

    p = params.load(root / "params.yaml")
    for section, values in override.items():
        p[section].update(values)
    return p | {"run": {"samples": None, "output_dir": None}}


def sft_prep(root, out):
    from gsm8k_pipeline.train_sft import SFTStageConfig

    return SFTStageConfig(
        stage="prep", output_dir=out, base_model=root / "models/base/model", train_file=root / "data/gsm8k/train.jsonl"
    )


def test_resumed_train_log_equals_an_uninterrupted_runs(workdir):
    """Killed right after the checkpoint at step 4 of 12 (mid first epoch), then rerun: the same log."""
    gsm8k(workdir, "train-sft", "--stage", "prep", "--output-dir", "whole")
    # The same command, with a callback that SIGKILLs the process once checkpoint-4 is on disk.
    killer = textwrap.dedent("""
        import os, signal, sys
        from transformers import TrainerCallback
        from gsm8k_pipeline import cli, training

        class Kill(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step == 4:
                    os.kill(os.getpid(), signal.SIGKILL)

        publish = training.run
        def run(trainer, *args, **kwargs):
            trainer.add_callback(Kill())
            return publish(trainer, *args, **kwargs)
        training.run = run
        cli.main(sys.argv[1:])
    """)
    args = ["train-sft", "--stage", "prep", "--output-dir", "resumed"]
    killed = subprocess.run([sys.executable, "-c", killer, *args], cwd=workdir, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert (workdir / "resumed/checkpoints/checkpoint-4/trainer_state.json").exists()
    assert not (workdir / "resumed/model").exists()
    out = gsm8k(workdir, *args).stdout
    assert "checkpoint-4" in out and "trained to step 12" in out

    whole, resumed = (pd.read_csv(workdir / d / "train_log.csv") for d in ("whole", "resumed"))
    assert list(resumed.columns) == list(whole.columns)
    assert {"num_tokens", "train_loss", "loss"} <= set(whole.columns)
    # Bit-identical: the checkpoint restores weights, optimizer, scheduler, RNG and data position exactly,
    # so every figure must be too: the wall-clock ones are in timings.json, not in the log.
    assert (workdir / "resumed/train_log.csv").read_bytes() == (workdir / "whole/train_log.csv").read_bytes()
    assert "train_runtime" in (workdir / "resumed/timings.json").read_text()
    assert whole["num_tokens"].dropna().is_monotonic_increasing


def test_published_model_folder_is_readable_by_the_group(workdir):
    gsm8k(workdir, "train-sft", "--stage", "prep", "--output-dir", "modes", umask=0o022)
    model = workdir / "modes/model"
    assert oct(model.stat().st_mode & 0o777) == oct(0o755)
    assert {oct(p.stat().st_mode & 0o777) for p in model.iterdir()} == {oct(0o644)}


@pytest.mark.parametrize("umask, expected", [(0o022, 0o755), (0o027, 0o750), (0o002, 0o775)])
def test_atomic_dir_respects_the_umask_like_mkdir(tmp_path, umask, expected):
    from gsm8k_pipeline.fileio import atomic_dir

    old = os.umask(umask)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            os.close(os.open(tmp / "private", os.O_CREAT | os.O_WRONLY, 0o600))  # as safetensors writes
            (tmp / "sub").mkdir(mode=0o700)
            os.close(os.open(tmp / "sub/tool", os.O_CREAT | os.O_WRONLY, 0o700))
    finally:
        os.umask(old)
    out = tmp_path / "out"
    modes = {p.name: p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]}
    assert modes == {"out": expected, "sub": expected, "private": expected & 0o666, "tool": expected}


def test_diverging_training_stops_naming_the_stage_and_publishes_nothing(workdir, tmp_path):
    from gsm8k_pipeline import PipelineError
    from gsm8k_pipeline.train_sft import main

    out = tmp_path / "diverged"
    params = load_params(workdir, prep_sft={"learning_rate": 1e308})  # past the schema, as a bug could
    diverged = r"^prep_sft .*: (loss|grad_norm) is (nan|inf|-inf) at step \d+; training diverged"
    with pytest.raises(PipelineError, match=diverged) as err:
        main(params, sft_prep(workdir, out))
    assert "\n" not in str(err.value)
    assert not (out / "model").exists() and not (out / "train_log.csv").exists()


def test_an_inf_gradient_norm_is_divergence_except_where_fp16_loss_scaling_skips_the_step():
    from types import SimpleNamespace

    from transformers import TrainerState

    from gsm8k_pipeline import PipelineError
    from gsm8k_pipeline.finite import FiniteGuard

    logs, state = {"loss": 2.5, "grad_norm": float("inf")}, TrainerState(global_step=7)
    FiniteGuard("grpo").on_log(SimpleNamespace(fp16=True), state, None, logs=logs)
    with pytest.raises(PipelineError, match="^grpo: grad_norm is inf at step 7"):
        FiniteGuard("grpo").on_log(SimpleNamespace(fp16=False), state, None, logs=logs)
    with pytest.raises(PipelineError, match="^grpo: loss is nan at step 7"):
        FiniteGuard("grpo").on_log(SimpleNamespace(fp16=True), state, None, logs=logs | {"loss": float("nan")})


def test_non_finite_weights_are_not_published_even_when_every_logged_loss_is_finite(workdir, tmp_path):
    """The last step's update is seen by no loss: the weights themselves are checked before publishing."""
    import torch
    from transformers import TrainerCallback

    from gsm8k_pipeline import PipelineError, training
    from gsm8k_pipeline.train_sft import main

    class Poison(TrainerCallback):  # a weight goes inf in the last update, after its loss was logged
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == state.max_steps:
                with torch.no_grad():
                    model.get_input_embeddings().weight[3, 5] = float("inf")

    publish = training.run

    def run(trainer, *args, **kwargs):
        trainer.add_callback(Poison())
        return publish(trainer, *args, **kwargs)

    out = tmp_path / "poisoned"
    try:
        training.run = run
        with pytest.raises(PipelineError, match=r"^prep_sft .*: weight model\.embed_tokens\.weight is not finite"):
            main(load_params(workdir), sft_prep(workdir, out))
    finally:
        training.run = publish
    assert not (out / "model").exists() and not (out / "train_log.csv").exists()


def test_lora_target_modules_missing_from_the_model_are_named(workdir):
    lora = {"enabled": True, "target_modules": ["q_proj", "nope", "self_attn.zz"]}
    (workdir / "lora.yaml").write_text(yaml.safe_dump(test_params(lora=lora)))
    proc = subprocess.run(
        ["gsm8k", "train-sft", "--stage", "prep", "--params", "lora.yaml", "--output-dir", "lora"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert line.startswith("gsm8k train-sft: error: lora.target_modules: 'nope', 'self_attn.zz' match no module of ")
    assert "q_proj" in line.split("linear modules:")[1] and "down_proj" in line


def test_lora_target_modules_match_like_peft(workdir):
    """A module's last name or any dotted suffix of its full name, as PEFT matches them."""
    from gsm8k_pipeline.loading import load_trainable

    params = load_params(workdir, lora={"enabled": True, "target_modules": ["q_proj", "mlp.down_proj"]})
    assert load_trainable(workdir / "models/base/model", params)[2].target_modules == {"q_proj", "mlp.down_proj"}
