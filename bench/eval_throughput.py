"""Eval throughput on the tiny model: batched generation vs one problem at a time.

    uv run python bench/eval_throughput.py [--model models/base/model] [--problems 64]

Uses the shipped params.yaml's eval settings; builds models/base first (through Snakemake) if absent.
Target (issue 2): batched ≥ 8x sequential on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/base/model"))
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()

    import torch

    from gsm8k_pipeline import params as P
    from gsm8k_pipeline.formatting import prompt_messages
    from gsm8k_pipeline.generation import generate, render_prompts
    from gsm8k_pipeline.loading import load_for_inference
    from gsm8k_pipeline.task import read_jsonl

    if not args.model.exists():
        subprocess.run(["snakemake", "--cores", "1", str(args.model.parent)], check=True)
    params = P.load(args.params)
    ev = params["eval"]
    rows = read_jsonl(Path("data/gsm8k/test.jsonl"))[: args.problems]
    model, tokenizer = load_for_inference(args.model)
    prompts = render_prompts(tokenizer, [prompt_messages(r["question"], params["prompt"]["system"]) for r in rows])

    result = {"problems": len(prompts), "max_new_tokens": ev["max_new_tokens"], "threads": torch.get_num_threads()}
    for label, batch_size in (("sequential", 1), ("batched", ev["batch_size"])):
        started = time.perf_counter()
        generate(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=ev["max_new_tokens"], desc=label)
        seconds = time.perf_counter() - started
        result[label] = {
            "batch_size": batch_size,
            "seconds": round(seconds, 2),
            "problems_per_second": round(len(prompts) / seconds, 2),
        }
    result["speedup"] = round(result["batched"]["problems_per_second"] / result["sequential"]["problems_per_second"], 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
