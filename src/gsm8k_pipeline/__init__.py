"""GSM8K pipeline: SFT vs GRPO across sample budgets, one DAG for Snakemake and DVC.

Every stage imports this file (importing any module of the package runs it first), so it holds what they all
share and nothing else:
- `PipelineError`: the one error a user can fix (bad params, bad data, no hub, no GPU); `gsm8k` prints it
  in one line and exits 2;
- the stage table `STAGES`: per stage, the `gsm8k` command it runs, the params.yaml sections it is handed,
  its outputs and the id of the model it writes. The Snakefile builds its rules from it, dvc.yaml's params
  lists are generated from it (`python -m gsm8k_pipeline.dag`), the CLI hands each stage exactly its sections,
  and the leaderboard names the models with it;
- `RunId`: builds and parses the model id `<method>_<budget>_s<seed>` of a budgeted run; `model_ids`: every
  model the DAG scores on test; `selected`: whether a model id matches params' glob patterns (lm_eval.models,
  eval.boosters.models).

Standard library only: the Snakefile imports it at parse time, and dvc.yaml reads METHODS from it as a vars
file (DVC parses the module-level literals of a .py file).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass


class PipelineError(Exception):
    """A problem with the inputs or the environment, not a bug; the message says what and where."""


# The budgeted training methods, in the leaderboard's order.
METHODS = ["full_sft", "grpo", "sft_from_traces"]
# Models evaluated once: no budget, no seed.
SHARED = ["base", "prep_sft"]
# Sections that say where and how jobs are scheduled, not what they compute: no stage reads them, so
# changing them reruns nothing (the leaderboard's "every section" leaves them out too).
SCHEDULING = ["resources"]


@dataclass(frozen=True)
class RunId:
    """One budgeted training run and the id of its model: `<method>_<budget>_s<seed>` (e.g. grpo_64_s0). Ids
    from before seeds were replicated, `<method>_<budget>`, parse with seed None (published results)."""

    method: str
    budget: int
    seed: int | None

    PATTERN = "{method}_{budget}_s{seed}"  # also the engines' wildcard pattern
    _RE = re.compile(r"(?P<method>[a-z_]+?)_(?P<budget>\d+)(?:_s(?P<seed>\d+))?")

    def __str__(self) -> str:
        return f"{self.group}_s{self.seed}" if self.seed is not None else self.group

    @property
    def group(self) -> str:
        """`<method>_<budget>`: the runs of one method and budget over seeds."""
        return f"{self.method}_{self.budget}"

    @classmethod
    def parse(cls, model_id: str) -> RunId | None:
        """The run of a budgeted model id; None for any other id (base, prep_sft, a hand-named eval)."""
        m = cls._RE.fullmatch(model_id)
        return cls(m["method"], int(m["budget"]), None if m["seed"] is None else int(m["seed"])) if m else None

    @classmethod
    def every(cls, params: dict, methods: list[str] = METHODS) -> list[RunId]:
        """Every budgeted run of the DAG, method by method, budget by budget, seed by seed."""
        return [cls(m, b, s) for m in methods for b in params["budgets"] for s in params["seeds"]]


def model_ids(params: dict) -> list[str]:
    """Every model the DAG scores on test: the shared models, then every budgeted run."""
    return [*SHARED, *(str(r) for r in RunId.every(params))]


def selected(model_id: str, patterns: list[str]) -> bool:
    """Whether `model_id` matches one of the glob patterns (e.g. params lm_eval.models; [] selects none)."""
    return any(fnmatch.fnmatchcase(model_id, p) for p in patterns)


@dataclass(frozen=True)
class Stage:
    command: str  # `gsm8k <command>`: src/gsm8k_pipeline/cli/<command, - as _>.py
    # The params.yaml sections it is handed ("eval"), or single keys of one ("full_sft.learning_rates");
    # None: all but SCHEDULING and `run`.
    sections: list[str] | None
    outputs: dict[str, str]  # name -> path, with the engines' wildcards ({budget}, {seed}, ...)
    model_id: str | None = None  # the model it writes (training) or scores (eval), as a pattern
    # Keys of its sections it is not handed ("eval.samples"): what it never reads, so that changing them
    # reruns nothing of it. A grid's rate comes from the command line, a validation eval reads no test cap.
    ignores: tuple[str, ...] = ()


# The torch stages read `threads`: the thread count changes float sums, hence the results. Those that run
# a model read its `precision`; base_model writes the weights of a dequantised GGUF model in it.
_TORCH = ["seed", "threads", "prompt"]
_MODEL = [*_TORCH, "precision"]
_TRAIN = [*_MODEL, "lora", "train"]
_RUN = "{budget}/s{seed}"  # a budgeted run's folder under its stage's


def _trained(stage: str) -> dict[str, str]:
    folder = f"models/{stage}/{_RUN}" if stage in METHODS else f"models/{stage}"
    return {"model": f"{folder}/model", "log": f"{folder}/train_log.csv", "timings": f"{folder}/timings.json"}


def _evaluated(model: str, folder: str = "metrics/eval") -> dict[str, str]:
    return {
        "metrics": f"{folder}/{model}.json",
        "debug": f"{folder}/{model}/debug.csv",
        "summary": f"{folder}/{model}/summary.txt",
        "timings": f"{folder}/{model}/timings.json",
    }


_TRACES = "data/traces/grpo_{budget}_s{seed}.jsonl"


def section_of(method: str) -> str:
    """The params section that sets `method`'s training, its learning-rate grid included: sft_from_traces
    trains with full_sft's settings (so the two SFT variants differ only in their targets)."""
    return "grpo" if method == "grpo" else "full_sft"


# A learning rate as Python writes the float (0.0003, 5e-05): how candidates' files and ids name it.
RATE = r"[0-9][0-9.e+-]*"


def candidate(method: str) -> str:
    """A learning-rate candidate's model id, `<method>_<budget>_lr<rate>` (rate as Python writes the float,
    which is also how DVC renders it in dvc.yaml's matrix: both engines name the same files)."""
    return f"{method}_{{budget}}_lr{{lr}}"


def candidate_method(model_id: str) -> str | None:
    """The method of a learning-rate candidate's model id (`candidate`); None for any other id."""
    return next((m for m in METHODS if re.fullmatch(rf"{m}_\d+_lr{RATE}", model_id)), None)


def _tuning() -> dict[str, Stage]:
    """Per method, its learning-rate selection on the validation split (issue 22): `tune_<method>` trains
    one candidate per rate of the grid at the first seed, `tune_eval_<method>` scores it greedy on
    data/gsm8k/validation.jsonl, `select_<method>` picks the rate every seed then trains with. Stages per
    method, not one with a method wildcard: each method's grid is its own section's, and DVC's matrix can
    only range over one list per key. select_<method> reads its candidates' folder
    (metrics/tune/<method>_<budget>/), which DVC tracks as a directory: its deps can't list a grid's files."""
    stages = {}
    for method in METHODS:
        folder = f"models/tune_{method}/{{budget}}/lr{{lr}}"
        section = section_of(method)
        command = "train-grpo" if method == "grpo" else "train-sft"
        stages[f"tune_{method}"] = Stage(
            command,
            [*_TRAIN, section],
            {"model": f"{folder}/model", "log": f"{folder}/train_log.csv", "timings": f"{folder}/timings.json"},
            ignores=(f"{section}.learning_rates",),  # its rate is its --learning-rate: a new one trains alone
        )
        # Greedy on the validation split, whole: no test cap, no boosters, no lm-eval (those are the test's).
        stages[f"tune_eval_{method}"] = Stage(
            "evaluate",
            [*_MODEL, "eval"],
            _evaluated(candidate(method), f"metrics/tune/{method}_{{budget}}"),
            ignores=("eval.samples", "eval.boosters"),
        )
        stages[f"select_{method}"] = Stage(
            "select", [f"{section}.learning_rates"], {"selection": f"metrics/select/{method}_{{budget}}.json"}
        )
    return stages


STAGES: dict[str, Stage] = {
    # Validates the whole params file before any other stage runs; it depends on params.yaml as a file, so
    # any edit reruns it, and it hands no section to a stage (dvc.yaml, workflow/rules/common.smk).
    "check_params": Stage("check-params", [], {"checked": "data/params.ok"}),
    "download": Stage(
        "download",
        ["data"],
        {
            "train": "data/gsm8k/train.jsonl",
            "validation": "data/gsm8k/validation.jsonl",
            "test": "data/gsm8k/test.jsonl",
            "stats": "data/gsm8k/stats.json",
        },
    ),
    "base_model": Stage(
        "base-model", [*_MODEL, "base_model"], {"model": "models/base/model", "info": "models/base/info.json"}, "base"
    ),
    "prep_sft": Stage("train-sft", [*_TRAIN, "prep_sft"], _trained("prep_sft"), "prep_sft"),
    # The budgeted runs train at the rate their selection chose, not at every rate of the grid: both engines
    # track only its `chosen` (DVC a params dependency, Snakemake a param read from the checkpoint's file),
    # so a grid that grows by a value reruns them only if the choice moves (docs/params.md).
    "full_sft": Stage(
        "train-sft", [*_TRAIN, "full_sft"], _trained("full_sft"), RunId.PATTERN, ("full_sft.learning_rates",)
    ),
    "grpo": Stage("train-grpo", [*_TRAIN, "grpo"], _trained("grpo"), RunId.PATTERN, ("grpo.learning_rates",)),
    "traces": Stage("generate-traces", [*_MODEL, "traces"], {"traces": _TRACES, "stats": _TRACES + ".stats.json"}),
    # SFT on GRPO's traces with full_sft's settings, so the two SFT variants differ only in their targets.
    "sft_from_traces": Stage(
        "train-sft", [*_TRAIN, "full_sft"], _trained("sft_from_traces"), RunId.PATTERN, ("full_sft.learning_rates",)
    ),
    "eval": Stage("evaluate", [*_MODEL, "eval", "lm_eval"], _evaluated("{model}"), "{model}"),
    **_tuning(),
    "eval_budget": Stage("evaluate", [*_MODEL, "eval", "lm_eval"], _evaluated(RunId.PATTERN), RunId.PATTERN),
    # The leaderboard's None: every section but SCHEDULING, since it records a digest of them as provenance.
    "leaderboard": Stage(
        "leaderboard",
        None,
        {
            "all": "metrics/all.json",
            "leaderboard": "metrics/LEADERBOARD.md",
            "curve": "metrics/accuracy_vs_budget.csv",
            "png": "metrics/accuracy_vs_budget.png",
            "rewards": "metrics/grpo_reward.png",
            "answer": "metrics/answer.rst",
            "timings": "metrics/timings.json",
        },
    ),
}


def result_sections(params: dict) -> list[str]:
    """The sections that make results: not where and how jobs are scheduled (SCHEDULING), nor what one
    command was asked to do (`run`)."""
    return [k for k in params if k not in SCHEDULING and k != "run"]


def stage_params(stage: str, params: dict) -> dict:
    """The params `stage` reads, from a loaded params dict: its sections (or single keys of one), less the
    keys it ignores."""
    spec = STAGES[stage]
    picked: dict = {}
    for name in spec.sections if spec.sections is not None else result_sections(params):
        section, _, key = name.partition(".")
        if key:
            picked.setdefault(section, {})[key] = params[section][key]
        else:
            picked[section] = params[section]
    for name in spec.ignores:
        section, _, key = name.partition(".")
        picked[section] = {k: v for k, v in picked[section].items() if k != key}
    return picked
