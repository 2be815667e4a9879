"""The DAG's own stage commands, as dvc.yaml declares them, on a machine without DVC or Snakemake (the GPU
machine): independent stages run side by side (one GPU serves several small-model jobs), nothing starts
after a deadline, and each finished stage's wall time is recorded.

    PYTHONPATH=src python3 bench/gpu_dag.py --params configs/smollm2.yaml --jobs 4 --deadline 420 --out dag.json

It runs in the current directory, which must hold the checkout's dvc.yaml (the stages' commands, deps and
outs, resolved here the way DVC resolves `matrix`, `foreach` and `${...}`); a stage runs once every stage
that writes one of its deps has finished. `gsm8k` is the package's CLI (python -m gsm8k_pipeline.cli).
Stages are commands, so this measures what a DAG run costs, process start-up included.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _lookup(name: str, ctx: dict):
    value = ctx
    for part in name.split("."):
        value = value[part]
    return value


def _resolve(node, ctx: dict):
    """DVC's `${...}` interpolation: a string that is one reference keeps the value's type."""
    if isinstance(node, str):
        if m := re.fullmatch(r"\$\{\s*([\w.]+)\s*\}", node):
            return _lookup(m[1], ctx)
        return re.sub(r"\$\{\s*([\w.]+)\s*\}", lambda m: str(_lookup(m[1], ctx)), node)
    if isinstance(node, list):
        return [_resolve(n, ctx) for n in node]
    if isinstance(node, dict):
        return {_resolve(k, ctx): _resolve(v, ctx) for k, v in node.items()}
    return node


def _paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def stages(dvc_yaml: Path, params: dict) -> dict[str, dict]:
    """name (DVC's: stage, stage@key, stage@a-b-c) -> {"cmd", "deps", "outs"}."""
    spec = yaml.safe_load(dvc_yaml.read_text())
    ctx = dict(params)
    for entry in spec.get("vars", []):  # `file.py:NAME`: a module-level constant
        path, name = entry.split(":")
        text = (dvc_yaml.parent / path).read_text()
        ctx[name] = eval(re.search(rf"^{name}\s*=\s*(.+)$", text, re.M)[1])  # a literal list  # noqa: S307
    out = {}
    for name, stage in spec["stages"].items():
        if "matrix" in stage:
            axes = _resolve(stage["matrix"], ctx)
            items = [
                (("-".join(map(str, combo))), dict(zip(axes, combo))) for combo in itertools.product(*axes.values())
            ]
            body = {k: v for k, v in stage.items() if k != "matrix"}
        elif "foreach" in stage:
            items = [(key, value) for key, value in _resolve(stage["foreach"], ctx).items()]
            body = stage["do"]
        else:
            items, body = [(None, None)], stage
        for key, item in items:
            local = ctx | ({"item": item, "key": key} if key is not None else {})
            s = _resolve(body, local)
            outs = [p for section in ("outs", "metrics", "plots") for p in _paths(s.get(section))]
            out[f"{name}@{key}" if key is not None else name] = {
                "cmd": " ".join(s["cmd"].split()),
                "deps": _paths(s.get("deps")),
                "outs": outs,
            }
    return out


def graph(found: dict[str, dict]) -> dict[str, set[str]]:
    """stage -> the stages that write one of its deps (or something under a dep that is a folder)."""
    writers = {o: name for name, s in found.items() for o in s["outs"]}
    needs = {}
    for name, s in found.items():
        needs[name] = {
            w
            for dep in s["deps"]
            for o, w in writers.items()
            if w != name and (o == dep or o.startswith(dep.rstrip("/") + "/"))
        }
    return needs


def _budget(name: str) -> int:
    """A stage's budget (matrix key `budget-seed` or `method-budget-seed`), 0 for the shared stages: the
    smaller budgets' runs finish first, so a deadline leaves whole (budget, seed) groups."""
    parts = name.partition("@")[2].split("-")
    return int(parts[-2]) if len(parts) >= 2 and parts[-2].isdigit() else 0


def run_dag(
    found: dict, needs: dict, jobs: int, deadline: float, logs: Path, on_done=None, retry_plain: bool = False
) -> dict:
    """Run every stage whose needs have finished, `jobs` at a time, the smaller budgets first; none starts
    after `deadline` (monotonic). `retry_plain`: a failed stage is run once more on the plain generation path."""
    shim = Path(tempfile.mkdtemp(prefix="gsm8k-shim-"))
    (shim / "gsm8k").write_text(f'#!/bin/sh\nexec {sys.executable} -m gsm8k_pipeline.cli "$@"\n')
    (shim / "gsm8k").chmod(0o755)
    env = os.environ | {"PATH": f"{shim}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
    logs.mkdir(parents=True, exist_ok=True)
    results, running = {}, {}

    def launch(name):
        started = time.perf_counter()
        log = logs / f"{name.replace('@', '_')}.log"
        rc = subprocess.run(f"{found[name]['cmd']} > {log} 2>&1", shell=True, env=env).returncode
        result = {"rc": rc, "seconds": round(time.perf_counter() - started, 1)}
        if rc != 0 and retry_plain and time.monotonic() < deadline:
            # The fast generation path (generation.FAST) is new on GPUs: one more try without it, said so.
            log.rename(log.with_suffix(".fast.log"))
            rc = subprocess.run(
                f"{found[name]['cmd']} > {log} 2>&1", shell=True, env=env | {"GSM8K_FAST_GENERATION": "0"}
            ).returncode
            result = {"rc": rc, "seconds": round(time.perf_counter() - started, 1), "fast_failed": True}
        return result

    with ThreadPoolExecutor(jobs) as pool:
        while True:
            done = {n for n, r in results.items() if r.get("rc") == 0}
            ready = sorted(
                (
                    n
                    for n in found
                    if n not in results
                    and n not in running.values()
                    and needs[n] <= done
                    and time.monotonic() < deadline
                ),
                key=_budget,
            )
            for name in ready[: jobs - len(running)]:
                running[pool.submit(launch, name)] = name
                print(f"[{time.strftime('%H:%M:%S')}] start {name}", flush=True)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                results[name] = future.result()
                print(
                    f"[{time.strftime('%H:%M:%S')}] {name}: rc {results[name]['rc']}, {results[name]['seconds']} s",
                    flush=True,
                )
                if on_done:
                    on_done(results)
    shutil.rmtree(shim, ignore_errors=True)
    for name in found:
        results.setdefault(name, {"rc": None, "seconds": None, "skipped": "a need failed or the deadline passed"})
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--params",
        type=Path,
        required=True,
        help="params.yaml, or an overlay of configs/ (params.yaml here becomes params.yaml overlaid with it)",
    )
    p.add_argument("--jobs", type=int, default=4, help="stages at a time (default: %(default)s)")
    p.add_argument("--deadline", type=float, default=1e9, help="seconds after which no stage starts")
    p.add_argument("--out", type=Path, default=None, help="the report (JSON), rewritten after every stage")
    p.add_argument("--only", nargs="*", default=None, help="just these stages and what they need")
    p.add_argument(
        "--retry-plain", action="store_true", help="run a failed stage once more without the fast generation path"
    )
    args = p.parse_args(argv)
    started = time.monotonic()
    params = yaml.safe_load(Path("params.yaml").read_text())
    if args.params.resolve() != Path("params.yaml").resolve():  # as `gsm8k params merge` does, unvalidated
        from gsm8k_pipeline.cli.params import overlay

        params = overlay(params, yaml.safe_load(args.params.read_text()))
        Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    found = stages(Path("dvc.yaml"), params)
    needs = graph(found)
    if args.only:
        keep, todo = set(), list(args.only)
        while todo:
            name = todo.pop()
            if name not in keep:
                keep.add(name)
                todo += needs[name]
        found = {n: s for n, s in found.items() if n in keep}
        needs = {n: needs[n] & keep for n in found}
    report = {"params": str(args.params), "jobs": args.jobs, "stages": {}}

    def save(results):
        report["stages"] = results
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")

    save(run_dag(found, needs, args.jobs, started + args.deadline, Path("logs/gpu_dag"), save, args.retry_plain))
    failed = [n for n, r in report["stages"].items() if r["rc"] not in (0, None)]
    print(
        f"{sum(r['rc'] == 0 for r in report['stages'].values())}/{len(found)} stages done in "
        f"{report['wall_seconds']} s; failed: {failed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
