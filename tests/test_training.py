"""Real TRL training of a test-sized model: label masking, resumption after kill -9, determinism, GRPO."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest
import yaml

from conftest import make_checkout, outputs, run, test_params


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A checkout with data and the base model built (through Snakemake)."""
    repo = make_checkout(tmp_path_factory.mktemp("train"), test_params())
    run(["snakemake", "--cores", "1", "models/base/model"], repo)
    return repo


def params_of(repo):
    from gsm8k_pipeline import params

    return params.load(repo / "params.yaml")


def test_sft_trains_on_the_completion_only_and_in_the_eval_prompt_format(repo, monkeypatch):
    """The labels are exactly the target plus the end-of-turn token, after the same prompt eval uses."""
    from trl import SFTConfig, SFTTrainer

    from gsm8k_pipeline.formatting import prompt_messages, to_target
    from gsm8k_pipeline.generation import render_prompts
    from gsm8k_pipeline.loading import load_trainable
    from gsm8k_pipeline.train_sft import SFTStageConfig, examples

    monkeypatch.chdir(repo)
    params = params_of(repo)
    config = SFTStageConfig(stage="prep", output_dir=repo / "unused", base_model=repo / "models/base/model")
    rows = examples(config, params)
    model, tokenizer, _ = load_trainable(config.base_model, params)
    from datasets import Dataset

    dataset = Dataset.from_list(
        [
            {
                "prompt": prompt_messages(r["question"], None),
                "completion": [{"role": "assistant", "content": r["target"]}],
            }
            for r in rows[:4]
        ]
    )
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=dataset,
        args=SFTConfig(
            output_dir=str(repo / "unused"),
            bf16=False,
            report_to=[],
            per_device_train_batch_size=4,
            completion_only_loss=True,
        ),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    prompts = render_prompts(tokenizer, [prompt_messages(r["question"], None) for r in rows[:4]])
    expected = {(p, r["target"] + tokenizer.eos_token) for p, r in zip(prompts, rows[:4])}
    seen = set()
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        first = next(i for i, lab in enumerate(labels) if lab != -100)
        assert all(lab != -100 or t == tokenizer.pad_token_id for t, lab in zip(ids[first:], labels[first:]))
        prompt = tokenizer.decode([t for t in ids[:first] if t != tokenizer.pad_token_id])
        seen.add((prompt, tokenizer.decode([t for t, lab in zip(ids, labels) if lab != -100])))
    assert seen == expected  # the batch is shuffled, so compare as sets
    assert rows[0]["target"] == to_target(
        json.loads((repo / "data/gsm8k/train.jsonl").read_text().splitlines()[0])["answer"]
    )


def wait_for_checkpoint(folder, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(folder.glob("checkpoint-*/trainer_state.json")):
            return
        assert proc.poll() is None, "training finished before a checkpoint could be interrupted"
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("engine", ["snakemake", "dvc"])
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path, engine):
    # 60 steps, a checkpoint every 2: seconds of training left after the first checkpoint, time enough to be
    # killed mid-run however loaded the machine (the poll below takes 50 ms).
    params = test_params(prep_sft={"samples": 120, "epochs": 2, "batch_size": 4})
    repo = make_checkout(tmp_path / "repo", params)
    run(["snakemake", "--cores", "1", "models/base/model"], repo)
    if engine == "dvc":
        run(["dvc", "commit", "-f", "download", "base_model"], repo)  # adopt the outputs Snakemake built
        start, again = ["dvc", "repro", "prep_sft"], ["dvc", "repro", "prep_sft"]
    else:
        start = ["snakemake", "--cores", "1", "models/prep_sft/model"]
        again = start + ["--rerun-incomplete"]
    proc = subprocess.Popen(
        start, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for_checkpoint(repo / "models/prep_sft/checkpoints", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (repo / "models/prep_sft/model").exists(), "a half-trained model must not look finished"

    if engine == "snakemake":  # a killed Snakemake leaves its lock behind; the documented step clears it
        run(["snakemake", "--unlock"], repo)
    out = run(again, repo)
    log = (repo / "logs/prep_sft.log").read_text() if engine == "snakemake" else out.stdout
    assert "resuming from" in log and "checkpoint-" in log
    resumed_step = int(re.search(r"resuming from \S+/checkpoint-(\d+)", log).group(1))
    final_step = int(re.search(r"trained to step (\d+)", log).group(1))
    assert 2 <= resumed_step < final_step
    assert (repo / "models/prep_sft/model/model.safetensors").exists()
    assert not (repo / "models/prep_sft/checkpoints").exists()


def test_a_checkpoint_cut_off_while_its_state_was_written_is_not_resumed(tmp_path):
    """A kill can land while the Trainer writes trainer_state.json (CI saw it empty): that checkpoint is cut
    short, and the one before it, still on disk until the new one is saved, is where the run resumes."""
    from gsm8k_pipeline.training import StageDirs, prepare_checkpoints

    dirs = StageDirs(tmp_path / "stage")
    for step, state in ((2, json.dumps({"log_history": []})), (4, ""), (6, '{"log_hist')):
        (dirs.checkpoints / f"checkpoint-{step}").mkdir(parents=True)
        (dirs.checkpoints / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (dirs.checkpoints / "checkpoint-8").mkdir()  # no state at all
    (dirs.checkpoints / "RUN_ID").write_text("run")
    assert prepare_checkpoints(dirs, "run") == str(dirs.checkpoints / "checkpoint-2")


def test_same_params_and_seed_give_identical_eval_metrics(repo):
    for i in range(2):
        out = repo / f"determinism{i}"
        run(["gsm8k", "train-sft", "--stage", "prep", "--output-dir", str(out)], repo)
        # One model path for both (summary.txt names it), as in the DAG, where each model has one place.
        (repo / "trained").unlink(missing_ok=True)
        (repo / "trained").symlink_to(out / "model")
        run(
            [
                "gsm8k",
                "evaluate",
                "--model-path",
                "trained",
                "--output-dir",
                str(out / "eval"),
                "--output-file",
                "prep_sft.json",  # an id params eval.boosters.models selects
            ],
            repo,
        )
    assert json.loads((repo / "determinism0/eval/prep_sft.json").read_text())["boosters"]  # sampled ones too
    # Every example trained whole, and the stage says so in the model folder.
    kept = json.loads((repo / "determinism0/model/sft_examples.json").read_text())
    assert (kept["asked"], kept["trained"], kept["truncated"], kept["dropped"]) == (48, 48, 0, 0)
    # Byte for byte: wall time, the one thing allowed to differ, is in the timings file (conftest.outputs).
    assert outputs(repo / "determinism0", "eval") == outputs(repo / "determinism1", "eval")
    assert (repo / "determinism0/model/model.safetensors").read_bytes() == (
        repo / "determinism1/model/model.safetensors"
    ).read_bytes()


def test_sft_refuses_a_max_length_that_loses_examples_naming_the_key_and_the_count(repo, tmp_path):
    """TRL cuts examples at max_length and drops, in silence, those left without a completion token: at 64
    tokens it trained 3 of 48 examples and published (issue 20, item 1). The stage refuses in one line
    before training, and leaves no model and no checkpoints."""
    params = params_of(repo)
    params["prep_sft"]["max_length"] = 64
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "prep_sft"
    proc = run(
        ["gsm8k", "train-sft", "--params", str(tmp_path / "params.yaml"), "--stage", "prep", "--output-dir", str(out)],
        repo,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    error = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(r"error: prep_sft\.max_length: 64 tokens lose 4\d of 48 training examples", error[0]), error
    assert not (out / "model").exists() and not (out / "checkpoints").exists()


def test_grpo_trains_and_logs_rewards(repo):
    """A learning-rate candidate's run: the same `gsm8k train-grpo` as a final run's, without the candidates'
    validation evals and selection that a final run waits for (test_engines.py runs those)."""
    run(["snakemake", "--cores", "1", "models/tune_grpo/8/lr5e-05/model"], repo)
    import pandas as pd

    log = pd.read_csv(repo / "models/tune_grpo/8/lr5e-05/train_log.csv")
    assert {"reward", "reward_std", "loss"} <= set(log.columns)
    assert any(c.startswith("rewards/correctness") for c in log.columns)
    assert (repo / "models/tune_grpo/8/lr5e-05/model/model.safetensors").exists()


def test_use_vllm_fails_clearly_on_cpu(repo, tmp_path):
    params = params_of(repo)
    params["grpo"]["use_vllm"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [
            "gsm8k",
            "train-grpo",
            "--params",
            str(tmp_path / "params.yaml"),
            "--output-dir",
            str(tmp_path / "out"),
            "--samples",
            "4",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "grpo.use_vllm is true but" in proc.stderr


def test_the_tuning_seeds_final_run_is_its_candidate_copied_and_the_same_as_training_it_again(repo):
    """training.reuse: the final run of the tuning seed at the chosen rate copies the candidate that trained
    exactly that run, and what it copies is byte for byte what training it again writes (the claim that
    makes the copy honest). Another seed's run is not that candidate, and trains."""
    sft = ["gsm8k", "train-sft", "--stage", "full", "--model", "models/base/model", "--samples", "8"]
    candidates = "models/tune_full_sft/8"
    run([*sft, "--seed", "0", "--learning-rate", "0.001", "--output-dir", f"{candidates}/lr0.001"], repo)
    again = run([*sft, "--seed", "0", "--learning-rate", "0.001", "--output-dir", "models/full_sft/8/again"], repo)
    copied = run(
        [
            *sft,
            "--seed",
            "0",
            "--learning-rate",
            "0.001",
            "--candidates",
            candidates,
            "--output-dir",
            "models/full_sft/8/s0",
        ],
        repo,
    )
    assert "reused" not in again.stdout and f"reused {candidates}/lr0.001" in copied.stdout
    trained, reused = (outputs(repo / f"models/full_sft/8/{folder}", ".") for folder in ("again", "s0"))
    assert "model/model.safetensors" in trained and "train_log.csv" in trained
    assert trained == reused  # every file but the timings
    assert json.loads((repo / "models/full_sft/8/s0/timings.json").read_text())["reused"] == f"{candidates}/lr0.001"
    other = run(
        [
            *sft,
            "--seed",
            "1",
            "--learning-rate",
            "0.001",
            "--candidates",
            candidates,
            "--output-dir",
            "models/full_sft/8/s1",
        ],
        repo,
    )
    assert "reused" not in other.stdout
    assert outputs(repo / "models/full_sft/8/s1", ".")["model/model.safetensors"] != reused["model/model.safetensors"]
