"""GPU smoke bench: the real experiment's shape, small, through the project's own stage functions.

    PYTHONPATH=src python3 bench/gpu_smoke.py --out gpu_smoke.json

A random-weight model with Qwen2.5-0.5B-Instruct's exact architecture and the hub-shaped fixture tokenizer
(src/gsm8k_pipeline/hub_fixture.py; nothing is downloaded), on real GSM8K (--gsm8k-dir), with
configs/gpu.yaml shrunk: prep_sft -> grpo -> traces -> eval, LoRA on, bf16, in a temp dir. It asserts the
model is on the GPU while training and generating, and reports (JSON, to stdout and --out) SFT tokens/s,
GRPO seconds per step split into generation and update, eval problems/s, and peak GPU memory.

Random weights never emit EOS, so every completion runs to its token limit: the generation figures are
the worst case of a real model's. Without a CUDA GPU it prints that it skipped and exits 0;
`--tiny --allow-cpu` runs the same path on a tiny model on the CPU (to check the bench itself).
Needs torch, transformers, peft, accelerate, trl, datasets, pandas, pyyaml — not the `gsm8k` command,
Snakemake or DVC.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # works without an installed package (PYTHONPATH=src does the same)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gsm8k-dir", type=Path, default=REPO.parent / "shared" / "data" / "gsm8k",
                   help="folder with train.jsonl and test.jsonl (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    p.add_argument("--prep-samples", type=int, default=64, help="prep_sft examples (default: %(default)s)")
    p.add_argument("--grpo-steps", type=int, default=8, help="GRPO optimiser steps (default: %(default)s)")
    p.add_argument("--grpo-tokens", type=int, default=512, help="GRPO max_completion_length (default: %(default)s)")
    p.add_argument("--traces", type=int, default=32, help="problems to sample traces for (default: %(default)s)")
    p.add_argument("--eval", type=int, default=128, help="test problems to evaluate (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="eval and traces (default: %(default)s)")
    p.add_argument("--tiny", action="store_true", help="a tiny Qwen2 instead of the 0.5B architecture")
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU (float32) when there is no GPU")
    p.add_argument("--keep", type=Path, default=None, help="work here instead of a removed temp dir")
    return p.parse_args(argv)


def bench_params(args, precision: str) -> dict:
    """configs/gpu.yaml, shrunk to the bench's sizes; everything else (LoRA, prompt, rewards) as shipped."""
    import yaml

    params = yaml.safe_load((REPO / "configs" / "gpu.yaml").read_text())
    params["precision"] = precision
    params["data"]["source"] = "local:data/gsm8k"
    params["base_model"] = {"name": "models/pretrained/fixture", "revision": None}  # a record only: the bench
    # writes the fixture straight to models/base/model and calls the stage functions from there
    params["eval"].update(samples=args.eval, max_new_tokens=args.max_new_tokens)
    params["traces"].update(max_new_tokens=args.max_new_tokens)
    params["run"] = {"samples": None, "output_dir": None}  # as params.resolve gives it to every stage
    params["train"].update(save_steps=10_000, logging_steps=1)  # no checkpoints: they would be timed too
    params["prep_sft"].update(samples=args.prep_samples, epochs=1)
    params["grpo"].update(use_vllm=False, max_completion_length=args.grpo_tokens, epochs=1)
    try:  # jsonschema may be missing on a bare GPU machine; validate where it is
        from gsm8k_pipeline.params import validate
        validate(params, REPO / "configs" / "gpu.yaml")
    except ImportError:
        pass
    return params


class Probe:
    """Instruments the project's stage functions from outside: asserts the model's device while it trains
    and generates, and times training steps, GRPO generation and generate() calls."""

    def __init__(self, expect: str):
        import torch

        self.torch, self.expect = torch, expect
        self.trainers: list[dict] = []
        self.generate_calls: list[dict] = []

    def sync(self):
        if self.expect == "cuda":
            self.torch.cuda.synchronize()

    def check(self, model, where: str):
        got = next(model.parameters()).device.type
        if got != self.expect:
            raise AssertionError(f"{where}: model on {got}, expected {self.expect}")

    def wrap_training_run(self, training):
        from transformers import TrainerCallback

        original, probe = training.run, self

        class Steps(TrainerCallback):
            def __init__(self, record):
                self.record = record

            def on_train_begin(self, args, state, control, model=None, **kw):
                probe.check(model, "train begin")
                probe.sync()
                self.record["started"] = time.perf_counter()

            def on_step_begin(self, args, state, control, model=None, **kw):
                probe.sync()
                self.record["step_started"] = time.perf_counter()

            def on_step_end(self, args, state, control, model=None, **kw):
                probe.check(model, f"step {state.global_step}")
                probe.sync()
                self.record["steps"].append(time.perf_counter() - self.record["step_started"])

            def on_train_end(self, args, state, control, **kw):
                probe.sync()
                self.record["seconds"] = time.perf_counter() - self.record["started"]

        def run(trainer, *a, **kw):
            record = {"kind": type(trainer).__name__, "steps": [], "generation": []}
            trainer.add_callback(Steps(record))
            if hasattr(trainer, "_generate_and_score_completions"):  # GRPO: time its generation phase
                inner = trainer._generate_and_score_completions

                def timed(*ga, **gk):
                    probe.check(trainer.model, "GRPO generation")
                    probe.sync()
                    t = time.perf_counter()
                    out = inner(*ga, **gk)
                    probe.sync()
                    record["generation"].append(time.perf_counter() - t)
                    return out

                trainer._generate_and_score_completions = timed
            if "input_ids" in (trainer.train_dataset.column_names or []):  # SFT: tokens actually trained on
                record["tokens"] = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
            self.trainers.append(record)
            return original(trainer, *a, **kw)

        training.run = run

    def wrap_generate(self, generation):
        original, probe = generation.generate, self

        def generate(model, tokenizer, prompts, **kw):
            probe.check(model, f"generate ({kw.get('desc')})")
            probe.sync()
            t = time.perf_counter()
            out = original(model, tokenizer, prompts, **kw)
            probe.sync()
            probe.generate_calls.append({"desc": kw.get("desc"), "problems": len(prompts),
                                         "seconds": time.perf_counter() - t})
            return out

        generation.generate = generate


def peak_gib(torch) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def run_bench(args, work: Path) -> dict:
    import torch

    from gsm8k_pipeline import evaluate, generation, hub_fixture, traces, train_grpo, train_sft, training
    from gsm8k_pipeline.download import read_jsonl

    cuda = torch.cuda.is_available()
    params = bench_params(args, "bf16" if cuda else "float32")
    probe = Probe("cuda" if cuda else "cpu")
    probe.wrap_training_run(training)
    probe.wrap_generate(generation)

    os.chdir(work)  # the stages read data/gsm8k/ relative to the working directory, like the engines
    data = Path("data/gsm8k")
    data.mkdir(parents=True)
    for split in ("train", "test"):
        (data / f"{split}.jsonl").write_bytes((args.gsm8k_dir / f"{split}.jsonl").read_bytes())
    t = time.perf_counter()
    arch = hub_fixture.TINY if args.tiny else hub_fixture.QWEN25_05B
    hub_fixture.save(Path("models/base/model"), read_jsonl(data / "train.jsonl")[:2000], arch,
                     vocab_size=1000 if args.tiny else 8000, seed=params["seed"])
    report = {"device": torch.cuda.get_device_name() if cuda else "cpu", "precision": params["precision"],
              "arch": {k: v for k, v in arch.items()}, "tiny": args.tiny, "build_seconds": round(time.perf_counter() - t, 1)}
    stage_peaks = {}

    def stage(name, fn):
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        out = fn()
        stage_peaks[name] = {"seconds": round(time.perf_counter() - started, 1), "peak_gpu_gib": peak_gib(torch)}
        return out

    stage("prep_sft", lambda: train_sft.main(params, train_sft.SFTStageConfig(
        stage="prep", output_dir=Path("models/prep_sft"), base_model=Path("models/base/model"))))
    grpo_problems = args.grpo_steps * params["grpo"]["prompts_per_step"]
    budget = lambda n: params | {"run": {"samples": n, "output_dir": None}}  # noqa: E731  (--samples N)
    stage("grpo", lambda: train_grpo.main(budget(grpo_problems), train_grpo.GRPOStageConfig(
        output_dir=Path("models/grpo"), base_model=Path("models/prep_sft/model"))))
    stats = stage("traces", lambda: traces.main(budget(args.traces), traces.TracesConfig(
        grpo_model=Path("models/grpo/model"), output_file="grpo.jsonl")))
    metrics = stage("eval", lambda: evaluate.main(params, evaluate.EvalConfig(
        model_path=Path("models/grpo/model"), output_file="grpo.json")))

    sft, grpo = probe.trainers
    gen, steps = grpo["generation"], grpo["steps"]
    later = slice(1, None) if len(steps) > 1 else slice(None)  # the first step includes warm-up
    mean = lambda xs: round(sum(xs) / len(xs), 3) if xs else None  # noqa: E731
    trace_call = next(c for c in probe.generate_calls if c["desc"] == "traces")
    report.update({
        "sft": {"examples": args.prep_samples, "tokens": sft.get("tokens"), "seconds": round(sft["seconds"], 2),
                "tokens_per_s": round(sft["tokens"] / sft["seconds"], 1) if sft.get("tokens") else None},
        "grpo": {"steps": len(steps), "completions_per_step": params["grpo"]["prompts_per_step"]
                 * params["grpo"]["num_generations"], "max_completion_length": args.grpo_tokens,
                 "step_s": mean(steps[later]), "generation_s": mean(gen[later]),
                 "update_s": mean([s - g for s, g in zip(steps, gen)][later]),
                 "first_step_s": round(steps[0], 3) if steps else None},
        "traces": {"problems": args.traces, "attempts": params["traces"]["max_attempts"],
                   "seconds": round(trace_call["seconds"], 2),
                   "sequences_per_s": round(args.traces * params["traces"]["max_attempts"] / trace_call["seconds"], 2),
                   "generation": stats["generation"]},
        "eval": {"problems": metrics["n"], "max_new_tokens": args.max_new_tokens,
                 "batch_size": params["eval"]["batch_size"], "problems_per_s": metrics["problems_per_second"],
                 "greedy_seconds": metrics["seconds"], "generation": metrics["generation"],
                 # configs/gpu.yaml's test-time boosters: each protocol's wall time beside greedy's (the
                 # sampled ones share one pass). Random weights: accuracies are ~0, only the costs mean anything.
                 "boosters": {name: {"seconds": b["seconds"], "accuracy": b["accuracy"]}
                              for name, b in metrics.get("boosters", {}).items()}},
        "stages": stage_peaks,
        "peak_gpu_gib": max((s["peak_gpu_gib"] or 0) for s in stage_peaks.values()) if cuda else None,
        "model_on_device_checked": True,  # Probe.check raised otherwise
    })
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_smoke: no CUDA GPU: skipped (--tiny --allow-cpu runs the bench's path on the CPU)")
        return 0
    # Fail in a second, not after building a model, where the GPU machine lacks a library.
    import importlib.util

    needed = ("transformers", "peft", "accelerate", "trl", "datasets", "pyarrow", "xxhash", "dill",
              "multiprocess", "pandas", "yaml", "tokenizers", "safetensors")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        print(f"gpu_smoke: error: missing Python packages: {', '.join(missing)}", file=sys.stderr)
        return 2
    for split in ("train", "test"):
        if not (args.gsm8k_dir / f"{split}.jsonl").exists():
            print(f"gpu_smoke: error: {args.gsm8k_dir / split}.jsonl not found (--gsm8k-dir)", file=sys.stderr)
            return 2
    args.gsm8k_dir = args.gsm8k_dir.resolve()
    out = args.out.resolve() if args.out else None
    started = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run_bench(args, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="gpu_smoke.") as tmp:
            report = run_bench(args, Path(tmp))
            os.chdir(REPO)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
