"""SmolLM2-135M-Instruct (configs/smollm2.yaml's base model, from its PyPI wheel) on real GSM8K test problems, on
this machine's CPU, through the stage commands: download -> base-model -> evaluate, in a temp checkout.

    uv run python bench/smollm2_cpu.py --problems 200 --out bench/results/smollm2_cpu_base.json

configs/smollm2.yaml as shipped (system prompt, decoding, 384 new tokens) but for what a CPU needs: float32,
no boosters, no lm-eval, the CPU's threads. Reports the accuracy with its interval, the answer and thinking
proportions, and each command's wall time (process start-up and model load included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", type=int, default=200, help="first N test problems (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=50, help="eval batch size (default: %(default)s)")
    p.add_argument("--gsm8k-dir", type=Path, default=REPO.parent / "shared" / "data" / "gsm8k")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    from gsm8k_pipeline.cli.params import overlay

    # configs/smollm2.yaml holds only what differs from params.yaml
    params = overlay(
        yaml.safe_load((REPO / "params.yaml").read_text()),
        yaml.safe_load((REPO / "configs" / "smollm2.yaml").read_text()),
    )
    params["precision"] = "float32"
    params["threads"] = os.cpu_count()
    params["data"]["source"] = f"local:{args.gsm8k_dir.resolve()}"
    params["eval"].update(
        samples=args.problems,
        batch_size=args.batch_size,
        boosters={**params["eval"]["boosters"], "calculator": False, "samples_per_problem": 0},
    )
    params["lm_eval"]["models"] = []
    params["resources"] = {k: {**v, "gpus": 0, "cpus": os.cpu_count()} for k, v in params["resources"].items()}
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
        "load_average_at_start": os.getloadavg(),  # other jobs sharing the CPUs slow the wall times
        "problems": args.problems,
        "stages": {},
    }
    with tempfile.TemporaryDirectory(prefix="smollm2-cpu-") as tmp:
        (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for name, cmd in (
            ("download", ["gsm8k", "download"]),
            ("base_model", ["gsm8k", "base-model"]),
            ("eval", ["gsm8k", "evaluate", "--output", "metrics/eval/base.json"]),
        ):
            started = time.perf_counter()
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            report["stages"][name] = round(time.perf_counter() - started, 1)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
        metrics = json.loads((Path(tmp) / "metrics/eval/base.json").read_text())
        clock = json.loads((Path(tmp) / "metrics/eval/base/timings.json").read_text())
        info = json.loads((Path(tmp) / "models/base/info.json").read_text())
    report.update(
        {
            k: metrics[k]
            for k in (
                "n",
                "correct",
                "accuracy",
                "accuracy_ci95",
                "answer_proportion",
                "thinking_proportion",
                "generation",
            )
        }
    )
    report["greedy_pass_seconds"] = clock["seconds"]
    report["base_model"] = info  # provenance: package, version, file, sha256, dtype; tokenizer fixes
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
