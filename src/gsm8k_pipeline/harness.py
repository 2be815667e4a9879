"""lm-evaluation-harness's GSM8K numbers beside the pipeline's own accuracy (params: `lm_eval`).

Published GSM8K numbers depend on the protocol: lm-eval's `gsm8k` task prompts with few-shot
"Question: …\\nAnswer: …" examples and scores two ways, `strict-match` (the answer after "#### ") and
`flexible-extract` (the last number in the response), which for chat models can differ by tens of points.
So the eval stage can also run that task, unchanged but for its data: `dataset_path: json` on the local
test split, few-shot examples from the local train split, so it runs offline and on the same problems as
our accuracy. Two variants: `fewshot` (the task as lm-eval's leaderboard runs it) and `chat` (the chat
template applied, few-shot examples as earlier turns: `--apply_chat_template --fewshot_as_multiturn`).

lm-eval cuts a prompt longer than the model's context minus `max_gen_toks` from the left, silently
dropping text; instead, the number of shots used is the largest one not above `num_fewshot` at which every
prompt fits, and the metrics say so (`num_fewshot_used`, `note`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path

from . import selected

TASK = "gsm8k_local"
SOURCE_TASK = "gsm8k"  # lm-eval's task this one copies
VARIANTS = {
    "fewshot": {"apply_chat_template": False, "fewshot_as_multiturn": False},
    "chat": {"apply_chat_template": True, "fewshot_as_multiturn": True},
}
FILTERS = ("strict-match", "flexible-extract")


def task_config(test_file: Path, train_file: Path) -> dict:
    """lm-eval's own gsm8k task config, as installed, on the local files (absolute paths: lm-eval loads
    them from wherever it runs)."""
    import lm_eval
    import yaml

    config = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / SOURCE_TASK / f"{SOURCE_TASK}.yaml").read_text())
    config.pop("tag", None)  # a tag would group this copy with lm-eval's own gsm8k tasks
    config.pop("dataset_name", None)  # `main`: a config of the hub dataset, not of local JSON
    return config | {
        "task": TASK,
        "dataset_path": "json",
        "dataset_kwargs": {
            "data_files": {"train": str(Path(train_file).resolve()), "test": str(Path(test_file).resolve())}
        },
    }


def config_digest(config: dict) -> str:
    """Digest of the task config lm-eval ran, without the paths of the local files and of the task's YAML
    (they differ between checkouts and runs; the data's content is in the task hash)."""
    portable = {k: v for k, v in config.items() if k != "dataset_kwargs"}
    portable["metadata"] = {k: v for k, v in config.get("metadata", {}).items() if k != "config_source"}
    blob = json.dumps(portable, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def task_hash(samples: list[dict]) -> str:
    """lm-eval's own task hash (as its EvaluationTracker writes it): every document, prompt and target."""
    from lm_eval.utils import hash_string

    return hash_string("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples))


def longest_prompt(lm, task, variant: dict, shots: int, limit: int | None) -> int:
    """Tokens of the longest prompt lm-eval builds for `task` at `shots` shots, drawing the examples with
    the few-shot seed its runs use, so a run's prompts are these."""
    from lm_eval.defaults import DEFAULT_OTHER_SEED

    task.set_config(key="num_fewshot", value=shots)
    task.set_fewshot_seed(seed=DEFAULT_OTHER_SEED)
    task.build_all_requests(limit=limit, chat_template=lm.apply_chat_template, **variant)
    return max(len(lm.tok_encode(instance.args[0])) for instance in task.instances)


def fitting_shots(
    lm, task_manager, variant: dict, requested: int, limit: int | None, max_gen_toks: int
) -> tuple[int, int]:
    """(shots, longest prompt in tokens): the most shots, up to `requested`, at which every prompt plus
    `max_gen_toks` fits the model's context."""
    from . import PipelineError

    task = task_manager.load([TASK])["tasks"][TASK]
    for shots in range(requested, -1, -1):
        longest = longest_prompt(lm, task, variant, shots, limit)
        if longest + max_gen_toks <= lm.max_length:
            return shots, longest
    raise PipelineError(
        f"lm_eval: even a 0-shot prompt ({longest} tokens) plus lm_eval.max_gen_toks "
        f"({max_gen_toks}) exceeds the model's context of {lm.max_length} tokens; "
        "lower lm_eval.max_gen_toks"
    )


def _run_variant(lm, task_manager, variant: dict, ev: dict, limit: int) -> dict:
    from lm_eval import simple_evaluate

    shots, longest = fitting_shots(lm, task_manager, variant, ev["num_fewshot"], limit, ev["max_gen_toks"])
    started = time.perf_counter()
    out = simple_evaluate(
        model=lm,
        tasks=[TASK],
        task_manager=task_manager,
        num_fewshot=shots,
        limit=limit,
        gen_kwargs={"max_gen_toks": ev["max_gen_toks"]},
        log_samples=True,
        **variant,
    )
    seconds = time.perf_counter() - started
    result, samples = out["results"][TASK], out["samples"][TASK]
    # lm-eval writes "N/A" for the stderr of a single problem; JSON gets null.
    stderr = {f: result[f"exact_match_stderr,{f}"] for f in FILTERS}
    scores = {
        f.replace("-", "_"): {
            "accuracy": result[f"exact_match,{f}"],
            "stderr": stderr[f] if isinstance(stderr[f], float) else None,
        }
        for f in FILTERS
    }
    note = None
    if shots < ev["num_fewshot"]:
        note = (
            f"{ev['num_fewshot']}-shot prompts do not fit the model's context of {lm.max_length} tokens "
            f"with {ev['max_gen_toks']} generated tokens; {shots}-shot ones do (longest {longest} tokens)"
        )
    return {
        **variant,
        "num_fewshot_requested": ev["num_fewshot"],
        "num_fewshot_used": out["n-shot"][TASK],
        "note": note,
        "max_prompt_tokens": longest,
        **scores,
        "n": out["n-samples"][TASK]["effective"],
        "task_hash": task_hash(samples),
        "config_digest": config_digest(out["configs"][TASK]),
        "example_response": samples[0]["resps"][0][0][:300],
        "seconds": round(seconds, 3),
    }


def run(model, tokenizer, params: dict, model_id: str, test_file: Path, train_file: Path) -> dict | None:
    """lm-eval's GSM8K on `model` (loaded, adapters merged), or None when params lm_eval.models doesn't
    select `model_id`. Few-shot examples come from `train_file`; the problems are the first `limit` of
    `test_file` (null: eval.samples, the problems of our own accuracy)."""
    ev = params["lm_eval"]
    if not selected(model_id, ev["models"]):
        return None
    from importlib.metadata import version

    import yaml
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    limit = ev["limit"] if ev["limit"] is not None else params["eval"]["samples"]
    started = time.perf_counter()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=ev["batch_size"])
    variants = {name: v for name, v in VARIANTS.items() if name == "fewshot" or ev["chat"]}
    results = {}
    with tempfile.TemporaryDirectory(prefix="gsm8k-lm-eval-") as include:
        config = task_config(test_file, train_file)
        (Path(include) / f"{TASK}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        task_manager = TaskManager(include_path=include, include_defaults=False)
        for name, variant in variants.items():
            results[name] = _run_variant(lm, task_manager, variant, ev, limit)
    return {
        "version": version("lm_eval"),
        "task": f"{SOURCE_TASK} (as {TASK}: the local test split, few-shot from the local train split)",
        "task_version": config["metadata"]["version"],
        "context_length": lm.max_length,
        "max_gen_toks": ev["max_gen_toks"],
        "limit": limit,
        "variants": results,
        "seconds": round(time.perf_counter() - started, 3),
    }
