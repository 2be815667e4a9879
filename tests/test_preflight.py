"""The preflight (src/gsm8k_pipeline/preflight.py): `gsm8k check-params` names what a run of the params needs and
this machine lacks — the hub, vLLM, a GPU — one line each, errors refusing and warnings not, and estimates the
wall time from the rates measured in bench/results; Snakemake shows the same at parse time (a dry run plans)
and refuses a real run before any job."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading

import pytest
import yaml

from conftest import REPO, make_checkout, run, test_params
from gsm8k_pipeline import preflight
from gsm8k_pipeline.cli.check_params import CHECKED
from gsm8k_pipeline.params import load, overlay

SHIPPED = load(REPO / "params.yaml")
GPU = overlay(SHIPPED, yaml.safe_load((REPO / "configs" / "gpu.yaml").read_text()))
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def closed_port() -> str:
    """An http endpoint on which nothing listens: an unreachable hub, at once and on any machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def check_params(*args: str, cwd=REPO, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gsm8k_pipeline.cli", "check-params", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ | {"HF_ENDPOINT": closed_port(), "CUDA_VISIBLE_DEVICES": ""} | env,
    )


def test_gpu_config_here_names_no_hub_no_vllm_and_no_gpu_in_one_run():
    """The issue's case: configs/gpu.yaml (an overlay, read over params.yaml) on a machine without the hub,
    vLLM or a GPU. The hub and vLLM are errors (download and GRPO would stop on them, GRPO after prep_sft
    trained); the GPU a warning, since gpu.yaml asks a scheduler for GPUs (resources.*.gpus)."""
    proc = check_params("--params", "configs/gpu.yaml", "--output", "unused.ok")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and proc.stdout == "" and not (REPO / "unused.ok").exists()
    where = "gsm8k check-params: {}: configs/gpu.yaml over params.yaml: "
    assert [line for line in lines if line.startswith(where.format("warning") + "precision: bf16 needs a CUDA GPU")]
    hub = [line for line in lines if line.startswith(where.format("error") + "hub unreachable (http://127.0.0.1")]
    assert hub and "data.source: hf and base_model.name: Qwen/Qwen2.5-0.5B-Instruct need it" in hub[0]
    vllm = [line for line in lines if "grpo.use_vllm: true but vLLM is not installed" in line]
    assert len(vllm) == (0 if HAS_VLLM else 1)
    assert lines[-1].endswith("--warn-only checks the params alone)")
    assert "Traceback" not in proc.stderr

    relaxed = check_params("--params", "configs/gpu.yaml", "--warn-only")
    assert relaxed.returncode == 0, relaxed.stderr
    assert relaxed.stdout.startswith("configs/gpu.yaml over params.yaml: ok\n")
    assert len([line for line in relaxed.stderr.splitlines() if ": warning: " in line]) == (2 if HAS_VLLM else 3)


def test_default_params_need_nothing_and_write_the_checked_file(tmp_path):
    out = tmp_path / "params.ok"
    proc = check_params("--params", "params.yaml", "--output", str(out))
    assert proc.returncode == 0 and proc.stderr == ""
    assert out.read_text() == CHECKED
    ok, estimate = proc.stdout.splitlines()
    assert ok == "params.yaml: ok"
    assert estimate.startswith("params.yaml: estimate: about ") and "for 91 jobs" in estimate


def test_a_hub_that_answers_is_no_finding(monkeypatch):
    class Hub(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)  # any answer is an answer
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        assert preflight.hub_problem() is None
        assert not [f for f in preflight.findings(GPU) if "hub" in f.what]
    finally:
        server.shutdown()


def test_offline_hub_is_a_warning_and_local_sources_need_no_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = [f for f in preflight.findings(GPU) if "hub" in f.what]
    assert [(f.level, f.what) for f in hub] == [("warning", "no hub (HF_HUB_OFFLINE)")]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(preflight, "hub_problem", lambda timeout=0: pytest.fail("asked the hub"))
    local = overlay(GPU, {"data": {"source": "local:../shared/data/gsm8k"}, "base_model": {"name": "tiny"}})
    assert preflight.hub_needs(local) == []
    assert not [f for f in preflight.findings(local) if "hub" in f.what]


@pytest.mark.parametrize("gpus, level", [(1, "warning"), (0, "error")])
def test_no_gpu_is_an_error_unless_a_scheduler_is_asked_for_gpus(monkeypatch, gpus, level):
    monkeypatch.setattr(preflight, "_cuda", lambda: False)
    monkeypatch.setattr(preflight, "hub_problem", lambda timeout=0: None)
    params = overlay(GPU, {"resources": {kind: {"gpus": gpus} for kind in ("train", "generate", "eval")}})
    assert [(f.level, f.what) for f in preflight.findings(params) if f.what == "no GPU"] == [(level, "no GPU")]
    monkeypatch.setattr(preflight, "_cuda", lambda: True)
    assert not [f for f in preflight.findings(params) if f.what == "no GPU"]
    assert not [f for f in preflight.findings(SHIPPED) if f.what == "no GPU"]  # float32 needs none


def test_vllm_is_checked_only_when_use_vllm_is_on(monkeypatch):
    monkeypatch.setattr(preflight, "hub_problem", lambda timeout=0: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert [f.level for f in preflight.findings(GPU) if f.what == "no vLLM"] == ["error"]
    assert not [f for f in preflight.findings(overlay(GPU, {"grpo": {"use_vllm": False}})) if f.what == "no vLLM"]


def test_estimates_from_the_measured_rates():
    """The GPU recipe from the H100 smoke bench's rates (as the README costs it: GRPO 5,760 steps at 20.0 s);
    the tiny default from the 2-core DAG run's stage seconds, so the default params give that run's total."""
    gpu = preflight.estimate(GPU)
    # GRPO: its 3 learning-rate candidates at the first seed 32.1 h (as 3 seeds would be), then the final runs
    # of the 2 other seeds (the first seed's is its candidate, copied: training.reuse)
    assert "for 175 jobs" in gpu and "tune_grpo 32.1 h" in gpu and "grpo 21.4 h" in gpu and "NVIDIA H100" in gpu
    total = float(gpu.split("about ")[1].split(" h")[0])
    assert 60 < total < 70
    cpu = preflight.estimate(SHIPPED)
    assert "for 91 jobs" in cpu and "2 CPU cores" in cpu
    dag = json.loads((REPO / "bench/results/default_dag_snakemake.json").read_text())
    measured = sum(float(v.split()[0]) for v in dag["stage_share"].values())  # the default's stage time
    assert cpu.startswith(f"estimate: about {round(measured / 60)} min")
    assert f"(about {round(dag['wall_seconds'] / 60)} min of wall time at `--cores 2`)" in cpu
    # Boosters on every model instead of the default's selection: more sampled eval, the same greedy work.
    everywhere = preflight.work(overlay(SHIPPED, {"eval": {"boosters": {"models": ["*"]}}}))
    default = preflight.work(SHIPPED)
    assert everywhere["eval_sampled"] > default["eval_sampled"] > 0 and everywhere["grpo"] == default["grpo"]
    assert preflight.estimate(overlay(SHIPPED, {"base_model": {"name": "some/model"}})) is None  # not measured


def test_snakemake_warns_in_a_dry_run_and_refuses_a_real_one(tmp_path):
    """At parse time every finding is a warning (`-n` still plans all 176 jobs, `all` included); a real run stops in onstart,
    before its first job (check_params) starts."""
    repo = make_checkout(tmp_path / "repo", yaml.safe_load((REPO / "params.yaml").read_text()))
    env = os.environ | {"HF_ENDPOINT": closed_port(), "CUDA_VISIBLE_DEVICES": ""}
    dry = run(["snakemake", "-n", "--cores", "1", "--configfile", "configs/gpu.yaml"], repo, env=env)
    warned = [line for line in dry.stderr.splitlines() if line.startswith("snakemake: warning: preflight: ")]
    assert len(warned) == (2 if HAS_VLLM else 3) and "hub unreachable" in warned[0]
    assert re.search(r"^total\s+176$", dry.stdout, re.M), dry.stdout[-2000:]  # the whole plan (Job stats)
    real = run(
        ["snakemake", "--cores", "1", "data/params.ok", "--configfile", "configs/gpu.yaml"], repo, env=env, check=False
    )
    assert real.returncode != 0
    assert "snakemake: error: preflight: this machine can't run these params (no hub" in real.stderr
    assert not (repo / "data" / "params.ok").exists()


def test_dvc_stops_at_check_params_before_any_stage(tmp_path):
    """DVC reruns check_params whenever params.yaml changes; its refusal stops `dvc repro` before download."""
    params = test_params(data={"source": "hf"}, grpo={"use_vllm": True})
    repo = make_checkout(tmp_path / "repo", params)
    env = os.environ | {"HF_ENDPOINT": closed_port(), "CUDA_VISIBLE_DEVICES": ""}
    proc = run(["dvc", "repro"], repo, env=env, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "gsm8k check-params: error: params.yaml: hub unreachable" in out and "data.source: hf needs it" in out
    assert ("vLLM is not installed" in out) != HAS_VLLM
    assert "Running stage 'download'" not in out and not (repo / "data" / "gsm8k").exists()
