"""bench/gpu_smoke.py: skips cleanly without a GPU, and its whole path (the project's stages, instrumented)
runs on the CPU with a tiny model."""

import json
import os
import subprocess
import sys

from conftest import REPO

BENCH = REPO / "bench" / "gpu_smoke.py"
HIDE_GPUS = os.environ | {"CUDA_VISIBLE_DEVICES": ""}


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--out", str(tmp_path / "r.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=HIDE_GPUS,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU: skipped" in proc.stdout
    assert not (tmp_path / "r.json").exists()


def test_tiny_cpu_run_measures_both_paths_and_says_it_had_no_gpu(tmp_path, shared_gsm8k):
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--tiny",
            "--allow-cpu",
            "--gsm8k-dir",
            str(shared_gsm8k),
            "--out",
            str(out),
            "--prep-samples",
            "16",
            "--grpo-steps",
            "2",
            "--grpo-tokens",
            "8",
            "--traces",
            "4",
            "--eval",
            "6",
            "--eval-batch",
            "4",
            "--max-new-tokens",
            "8",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=HIDE_GPUS | {"PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NO GPU" in proc.stdout
    report = json.loads(out.read_text())
    assert report["gpu"] is False and "NO GPU" in report["note"]
    assert report["device"] == "cpu" and report["model_on_device_checked"]
    assert report["sft"]["tokens"] > 0 and report["sft"]["tokens_per_s"] > 0
    for variant, path in (("plain", "TRL generate"), ("fast", "fast rollouts (rollouts.py)")):
        side = report[variant]
        assert side["grpo"]["steps"] == 2 and side["grpo"]["path"] == path
        assert 0 < side["grpo"]["generation_s"] < side["grpo"]["step_s"]
        assert 0 < side["grpo"]["generation_share"] < 1 and side["grpo"]["rollout_tokens_per_s"] > 0
        assert side["eval"]["problems"] == 6 and side["eval"]["passes"][0]["fast"] is (variant == "fast")
        assert side["eval"]["passes"][0]["steady_tokens_per_second"] > 0
        assert side["traces"]["passes"][0]["new_tokens"] > 0
        # Decoding is params', not the fixture checkpoint's (which samples with penalties).
        assert side["eval"]["generation"]["do_sample"] is False
        assert side["eval"]["generation"]["repetition_penalty"] == 1.0
        assert side["traces"]["generation"]["top_k"] == 0
    assert set(report["sections"]) == {"prep_sft"} | {
        f"{v}/{s}" for v in ("plain", "fast") for s in ("grpo", "traces", "eval")
    }
    assert report["fast_over_plain"]["grpo_rollout_tokens_per_s"] > 0
