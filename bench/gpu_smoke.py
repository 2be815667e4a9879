"""GPU smoke bench: the real experiment's shape, small, through the project's own stage functions, with
generation's plain path (before) and fast path (after, generation.FAST) side by side in one run.

    PYTHONPATH=src python3 bench/gpu_smoke.py --out gpu_smoke.json [--model-dir PATH]

The model: --model-dir (a plain HF model folder with a chat template, e.g. SmolLM2-135M-Instruct), else a
random-weight model with Qwen2.5-0.5B-Instruct's exact architecture and the hub-shaped fixture tokenizer
(tests/support/hub_fixture.py; nothing is downloaded), or --tiny. Real GSM8K (--gsm8k-dir), configs/gpu.yaml
shrunk, LoRA on, bf16, in a temp dir: prep_sft (optional), then for each variant (plain, fast) grpo -> traces ->
eval, traces and eval on the same start model for both variants. It asserts the model is on the GPU while
training and generating, and reports (JSON, to stdout and to --out after every section, so a run cut short
still leaves its figures): GRPO seconds per step split into generation and update, the share of the step spent
generating, rollout tokens/s; traces and eval generated tokens/s, first batch (warm-up) apart from the steady
state; peak GPU memory per section; and the fast/plain ratios.

Random weights rarely emit EOS, so their completions run to the token limit: the worst case of a real model's.
Without a CUDA GPU it prints that it skipped and exits 0; `--tiny --allow-cpu` runs the same path on a tiny
model on the CPU (to check the bench itself), and its report says plainly that no GPU was used.
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
# Works without an installed package too (a bare GPU machine): the package and the test support package.
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--gsm8k-dir",
        type=Path,
        default=REPO.parent / "shared" / "data" / "gsm8k",
        help="folder with train.jsonl and test.jsonl (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, default=None, help="the JSON report, rewritten after every section")
    p.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="a plain HF model folder (e.g. SmolLM2-135M-Instruct) instead of the random fixture",
    )
    p.add_argument(
        "--variants",
        type=lambda v: v.split(","),
        default=["plain", "fast"],
        help="generation paths to measure, in order (default: plain,fast)",
    )
    p.add_argument(
        "--compile-backend",
        default=None,
        help="the fast path's torch.compile backend, e.g. cudagraphs (default: transformers', inductor)",
    )
    p.add_argument("--prep-samples", type=int, default=64, help="prep_sft examples; 0 = none (default: %(default)s)")
    p.add_argument("--grpo-steps", type=int, default=8, help="GRPO optimiser steps; 0 = none (default: %(default)s)")
    p.add_argument("--grpo-tokens", type=int, default=512, help="GRPO max_completion_length (default: %(default)s)")
    p.add_argument("--grpo-prompts", type=int, default=None, help="GRPO prompts per step (default: configs/gpu.yaml)")
    p.add_argument("--grpo-generations", type=int, default=None, help="completions per prompt (default: gpu.yaml)")
    p.add_argument(
        "--traces", type=int, default=32, help="problems to sample traces for; 0 = none (default: %(default)s)"
    )
    p.add_argument("--eval", type=int, default=128, help="test problems to evaluate; 0 = none (default: %(default)s)")
    p.add_argument("--eval-batch", type=int, default=None, help="eval and traces batch size (default: gpu.yaml)")
    p.add_argument(
        "--samples-per-problem",
        type=int,
        default=None,
        help="eval's sampled booster pass; 0 = none (default: gpu.yaml's)",
    )
    p.add_argument("--max-new-tokens", type=int, default=512, help="eval and traces (default: %(default)s)")
    p.add_argument("--tiny", action="store_true", help="a tiny Qwen2 instead of the 0.5B architecture")
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU (float32) when there is no GPU")
    p.add_argument("--keep", type=Path, default=None, help="work here instead of a removed temp dir")
    return p.parse_args(argv)


def bench_params(args, precision: str) -> dict:
    """params.yaml overlaid with configs/gpu.yaml, shrunk to the bench's sizes; everything else (LoRA, prompt,
    rewards) as shipped."""
    import yaml

    from gsm8k_pipeline.cli.params import overlay

    params = overlay(
        yaml.safe_load((REPO / "params.yaml").read_text()), yaml.safe_load((REPO / "configs" / "gpu.yaml").read_text())
    )
    params["precision"] = precision
    params["data"]["source"] = "local:data/gsm8k"
    shipped_base = params["base_model"]
    params["base_model"] = {"name": "models/pretrained/fixture", "revision": None}  # a record only: the bench
    # writes the fixture straight to models/base/model and calls the stage functions from there
    params["eval"].update(samples=args.eval or 1, max_new_tokens=args.max_new_tokens)
    params["traces"].update(max_new_tokens=args.max_new_tokens)
    params["run"] = {"samples": None, "output_dir": None}  # as params.resolve gives it to every stage
    params["train"].update(save_steps=10_000, logging_steps=1)  # no checkpoints: they would be timed too
    params["prep_sft"].update(samples=args.prep_samples or 1, epochs=1)  # 0: the section is skipped
    params["grpo"].update(use_vllm=False, max_completion_length=args.grpo_tokens, epochs=1)
    for key, value in (("prompts_per_step", args.grpo_prompts), ("num_generations", args.grpo_generations)):
        if value is not None:
            params["grpo"][key] = value
    if args.eval_batch is not None:
        params["eval"]["batch_size"] = params["traces"]["batch_size"] = args.eval_batch
    if args.samples_per_problem is not None:
        boosters = params["eval"]["boosters"]
        boosters["samples_per_problem"] = args.samples_per_problem
        boosters["k"] = min(boosters["k"], args.samples_per_problem) or 1
    try:  # jsonschema may be missing on a bare GPU machine; validate where it is
        from gsm8k_pipeline.params import validate

        # with a base model that exists here: the fixture's folder is written after this check
        validate({**params, "base_model": shipped_base}, REPO / "configs" / "gpu.yaml")
    except ImportError:
        pass
    return params


class Probe:
    """Instruments the project's stage functions from outside, through public hooks: a TrainerCallback for
    step times and devices, the trainer's rollout_func timings (fast path) or a timer on the policy's own
    `generate` (TRL's path), and generation.generate's `record` for traces."""

    def __init__(self, expect: str):
        import torch

        self.torch, self.expect = torch, expect
        self.trainers: list[dict] = []
        self.passes: list[dict] = []  # generation.generate's timings, in order

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
            record = {"kind": type(trainer).__name__, "steps": [], "generation": [], "tokens": []}
            trainer.add_callback(Steps(record))
            record["rollouts"] = getattr(trainer, "rollout_func", None)  # the fast path's Rollouts
            if hasattr(trainer, "num_generations") and record["rollouts"] is None:
                probe.time_generate(trainer.model, record, trainer.processing_class.eos_token_id)
            if "input_ids" in (trainer.train_dataset.column_names or []):  # SFT: tokens actually trained on
                record["sft_tokens"] = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
            self.trainers.append(record)
            return original(trainer, *a, **kw)

        training.run = run

    def time_generate(self, model, record, eos):
        """TRL's own rollouts call the policy's `generate`: time it on this one instance."""
        inner, probe = model.generate, self

        def generate(*a, **kw):
            probe.check(model, "GRPO generation")
            probe.sync()
            t = time.perf_counter()
            out = inner(*a, **kw)
            probe.sync()
            record["generation"].append(time.perf_counter() - t)
            new = out[:, kw["input_ids"].shape[1] :]
            ends = (new == eos).int().cumsum(1)  # tokens up to and including the first EOS
            record["tokens"].append(int(((ends == 0) | ((ends == 1) & (new == eos))).sum()))
            return out

        model.generate = generate

    def wrap_generate(self, generation):
        original, probe = generation.generate, self

        def generate(model, tokenizer, prompts, **kw):
            probe.check(model, f"generate ({kw.get('desc')})")
            kw.setdefault("record", probe.passes)
            return original(model, tokenizer, prompts, **kw)

        generation.generate = generate


def peak_gib(torch) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def mean(xs):
    return round(sum(xs) / len(xs), 3) if xs else None


def grpo_figures(record: dict, completions_per_step: int, max_tokens: int) -> dict:
    """Seconds per step split into generation and update, steady state (after the first step, which pays any
    warm-up) apart from the first step."""
    steps = record["steps"]
    if record["rollouts"] is not None:  # the fast path times itself
        timings = record["rollouts"].timings
        gen = [t["seconds"] + t["refresh_seconds"] for t in timings]
        tokens = [t["new_tokens"] for t in timings]
    else:
        gen, tokens = record["generation"], record["tokens"]
    later = slice(1, None) if len(steps) > 1 else slice(None)
    step_s, gen_s = mean(steps[later]), mean(gen[later])
    return {
        "steps": len(steps),
        "completions_per_step": completions_per_step,
        "max_completion_length": max_tokens,
        "step_s": step_s,
        "generation_s": gen_s,
        "update_s": mean([s - g for s, g in zip(steps, gen)][later]),
        "generation_share": round(gen_s / step_s, 3) if step_s and gen_s is not None else None,
        "rollout_tokens_per_s": round(sum(tokens[later]) / sum(gen[later]), 1) if gen[later] else None,
        "mean_completion_tokens": round(sum(tokens) / len(tokens) / completions_per_step, 1) if tokens else None,
        "first_step_s": round(steps[0], 3) if steps else None,
        "first_generation_s": round(gen[0], 3) if gen else None,
        "refresh_s": mean([t["refresh_seconds"] for t in record["rollouts"].timings][later])
        if record["rollouts"] is not None
        else None,
    }


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def run_bench(args, work: Path, write) -> dict:
    import torch

    from gsm8k_pipeline import evaluate, generation, traces, train_grpo, train_sft, training
    from gsm8k_pipeline.download import read_jsonl
    from support import hub_fixture

    cuda = torch.cuda.is_available()
    params = bench_params(args, "bf16" if cuda else "float32")
    probe = Probe("cuda" if cuda else "cpu")
    probe.wrap_training_run(training)
    probe.wrap_generate(generation)
    if args.compile_backend:  # the fast path's decoding graph without inductor, e.g. "cudagraphs"
        generation.COMPILE = {"backend": args.compile_backend, "mode": None}

    os.chdir(work)  # the stages read data/gsm8k/ relative to the working directory, like the engines
    data = Path("data/gsm8k")
    data.mkdir(parents=True)
    for split in ("train", "test"):
        (data / f"{split}.jsonl").write_bytes((args.gsm8k_dir / f"{split}.jsonl").read_bytes())
    t = time.perf_counter()
    if args.model_dir:
        base, arch = args.model_dir, None
    else:
        base, arch = Path("models/base/model"), hub_fixture.TINY if args.tiny else hub_fixture.QWEN25_05B
        hub_fixture.save(
            base,
            read_jsonl(data / "train.jsonl")[:2000],
            arch,
            vocab_size=1000 if args.tiny else 8000,
            seed=params["seed"],
        )
    report = {
        "gpu": cuda,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "note": None
        if cuda
        else "NO GPU: ran on the CPU in float32 (--allow-cpu); these figures check the bench, "
        "they say nothing about GPU speed",
        "precision": params["precision"],
        "torch": torch.__version__,
        "model": str(args.model_dir or "fixture"),
        "arch": arch,
        "tiny": args.tiny,
        "build_seconds": round(time.perf_counter() - t, 1),
        "sizes": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "compile": generation.COMPILE or "transformers default (inductor, reduce-overhead)",
    }

    def section(name, fn):
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        out = fn()
        report.setdefault("sections", {})[name] = {
            "seconds": round(time.perf_counter() - started, 1),
            "peak_gpu_gib": peak_gib(torch),
        }
        write(report)
        return out

    start = base
    budget = lambda n: params | {"run": {"samples": n, "output_dir": None}}  # noqa: E731  (--samples N)
    if args.prep_samples:
        section(
            "prep_sft",
            lambda: train_sft.main(
                params, train_sft.SFTStageConfig(stage="prep", output_dir=Path("models/prep_sft"), base_model=base)
            ),
        )
        sft = probe.trainers[-1]
        report["sft"] = {
            "examples": args.prep_samples,
            "tokens": sft.get("sft_tokens"),
            "seconds": round(sft["seconds"], 2),
            "tokens_per_s": round(sft["sft_tokens"] / sft["seconds"], 1) if sft.get("sft_tokens") else None,
        }
        start = Path("models/prep_sft/model")
    g = params["grpo"]
    for variant in args.variants:
        generation.FAST = variant == "fast"
        torch._dynamo.reset()  # each variant compiles its own graphs (inductor's on-disk cache stays warm)
        out = report.setdefault(variant, {})
        if args.grpo_steps:
            section(
                f"{variant}/grpo",
                lambda: train_grpo.main(
                    budget(args.grpo_steps * g["prompts_per_step"]),
                    train_grpo.GRPOStageConfig(output_dir=Path(f"models/grpo_{variant}"), base_model=start),
                ),
            )
            out["grpo"] = grpo_figures(
                probe.trainers[-1], g["prompts_per_step"] * g["num_generations"], g["max_completion_length"]
            )
            out["grpo"]["path"] = "fast rollouts (rollouts.py)" if probe.trainers[-1]["rollouts"] else "TRL generate"
            write(report)
        if args.traces:
            first = len(probe.passes)
            stats = section(
                f"{variant}/traces",
                lambda: traces.main(
                    budget(args.traces), traces.TracesConfig(grpo_model=start, output_file=f"{variant}.jsonl")
                ),
            )
            out["traces"] = {
                "problems": args.traces,
                "attempts": params["traces"]["max_attempts"],
                "passes": probe.passes[first:],
                "generation": stats["generation"],
            }
            write(report)
        if args.eval:
            metrics = section(
                f"{variant}/eval",
                lambda: evaluate.main(params, evaluate.EvalConfig(model_path=start, output_file=f"{variant}.json")),
            )
            out["eval"] = {
                "problems": metrics["n"],
                "max_new_tokens": args.max_new_tokens,
                "batch_size": params["eval"]["batch_size"],
                "accuracy": metrics["accuracy"],
                "greedy_seconds": metrics["seconds"],
                "generation": metrics["generation"],
                "warmup_seconds": metrics["timings"]["warmup_seconds"],
                "passes": metrics["timings"]["passes"],
                # configs/gpu.yaml's boosters beside greedy (the sampled protocols share one pass).
                "boosters": {
                    name: {"seconds": b["seconds"], "accuracy": b["accuracy"]}
                    for name, b in metrics.get("boosters", {}).items()
                },
            }
            write(report)
    generation.FAST = None
    report["fast_over_plain"] = compare(report)
    report["model_on_device_checked"] = True  # Probe.check raised otherwise
    return report


def compare(report: dict) -> dict | None:
    """The after/before ratios of the headline figures (higher is better for rates, lower for seconds)."""
    plain, fast = report.get("plain"), report.get("fast")
    if not (plain and fast):
        return None
    out = {}
    if "grpo" in plain and "grpo" in fast:
        out["grpo_rollout_tokens_per_s"] = ratio(
            fast["grpo"]["rollout_tokens_per_s"], plain["grpo"]["rollout_tokens_per_s"]
        )
        out["grpo_step_s"] = ratio(fast["grpo"]["step_s"], plain["grpo"]["step_s"])
    for name in ("traces", "eval"):
        if name in plain and name in fast:
            first = {side: runs[name]["passes"][0] for side, runs in (("fast", fast), ("plain", plain))}
            rate = {side: p["steady_tokens_per_second"] or p["tokens_per_second"] for side, p in first.items()}
            out[f"{name}_tokens_per_s"] = ratio(rate["fast"], rate["plain"])
            out[f"{name}_seconds"] = ratio(
                sum(p["seconds"] for p in fast[name]["passes"]), sum(p["seconds"] for p in plain[name]["passes"])
            )
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_smoke: no CUDA GPU: skipped (--tiny --allow-cpu runs the bench's path on the CPU)")
        return 0
    # Fail in a second, not after building a model, where the GPU machine lacks a library.
    import importlib.util

    needed = (
        "transformers",
        "peft",
        "accelerate",
        "trl",
        "datasets",
        "pyarrow",
        "xxhash",
        "dill",
        "multiprocess",
        "pandas",
        "yaml",
        "tokenizers",
        "safetensors",
    )
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        print(f"gpu_smoke: error: missing Python packages: {', '.join(missing)}", file=sys.stderr)
        return 2
    for split in ("train", "test"):
        if not (args.gsm8k_dir / f"{split}.jsonl").exists():
            print(f"gpu_smoke: error: {args.gsm8k_dir / split}.jsonl not found (--gsm8k-dir)", file=sys.stderr)
            return 2
    args.gsm8k_dir = args.gsm8k_dir.resolve()
    if args.model_dir:
        args.model_dir = args.model_dir.resolve()
        if not (args.model_dir / "config.json").exists():
            print(f"gpu_smoke: error: {args.model_dir}/config.json not found (--model-dir)", file=sys.stderr)
            return 2
    out = args.out.resolve() if args.out else None
    started = time.perf_counter()

    def write(report):  # after every section: a run cut off still leaves what it measured
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        if out:
            out.write_text(json.dumps(report, indent=2) + "\n")

    if not torch.cuda.is_available():
        print(
            "gpu_smoke: NO GPU: running on the CPU (--allow-cpu); the figures check the bench, not GPU speed",
            flush=True,
        )
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run_bench(args, args.keep.resolve(), write)
    else:
        with tempfile.TemporaryDirectory(prefix="gpu_smoke.") as tmp:
            report = run_bench(args, Path(tmp), write)
            os.chdir(REPO)
    write(report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
