"""`download` stage: data/gsm8k/{train,test}.jsonl + stats.json from the source named in params.

Every row is validated; one bad row fails the stage with FILE:LINE: reason, and nothing is dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError
from .fileio import atomic_write_json, atomic_write_jsonl

SPLITS = ("train", "test")
HF_DATASET = "openai/gsm8k"
# A GSM8K gold: an integer, optionally with thousands commas, optionally negative or decimal.
GOLD_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


class DataError(PipelineError, ValueError):
    """A row of a data file is invalid; the message starts with FILE:LINE."""


@dataclass(frozen=True)
class DownloadConfig:
    out_dir: Path = Path("data/gsm8k")


def validate_row(row, where: str) -> dict:
    """Check one GSM8K row; `where` is FILE:LINE for the error message."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in ("question", "answer"):
        if key not in row:
            raise DataError(f"{where}: missing key {key!r}")
        if not isinstance(row[key], str) or not row[key].strip():
            raise DataError(f"{where}: {key!r} must be a non-empty string")
    if row["answer"].count("####") != 1:
        raise DataError(f"{where}: answer must contain exactly one '####' line")
    gold = row["answer"].rsplit("####", 1)[1].strip()
    if not GOLD_RE.fullmatch(gold):
        raise DataError(f"{where}: gold answer after '####' is not a number: {gold[:40]!r}")
    return {"question": row["question"], "answer": row["answer"]}


def read_jsonl(path: Path) -> list[dict]:
    """Read and validate a GSM8K jsonl file; errors name the file and line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if not line.strip():
                raise DataError(f"{where}: empty line")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
            rows.append(validate_row(row, where))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def gold(answer: str) -> str:
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def _from_local(folder: Path) -> dict[str, list[dict]]:
    missing = [str(folder / f"{s}.jsonl") for s in SPLITS if not (folder / f"{s}.jsonl").is_file()]
    if missing:
        raise DataError(f"data.source local: missing {', '.join(missing)}")
    return {s: read_jsonl(folder / f"{s}.jsonl") for s in SPLITS}


def _from_hub(revision: str) -> dict[str, list[dict]]:
    import datasets

    try:
        ds = datasets.load_dataset(HF_DATASET, "main", revision=revision)
    except Exception as exc:  # network errors come in many types; re-raised with the reason attached
        raise DataError(
            f"hub unreachable: could not load {HF_DATASET} (config main, revision {revision}) from the "
            f"Hugging Face hub: {type(exc).__name__}: {exc}. Offline? Set data.source to "
            f"local:PATH (a folder with train.jsonl and test.jsonl) or synthetic in params.yaml."
        ) from exc
    return {
        s: [validate_row(r, f"{HF_DATASET}@{revision}:{s}:{i}") for i, r in enumerate(ds[s], 1)]
        for s in SPLITS
    }


def _from_synthetic(knobs: dict) -> dict[str, list[dict]]:
    from .synthetic import generate_splits

    knobs = dict(knobs)
    train, test = generate_splits(knobs.pop("n_train"), knobs.pop("n_test"), knobs.pop("seed"), **knobs)
    return {
        s: [validate_row(r, f"synthetic:{s}:{i}") for i, r in enumerate(rows, 1)]
        for s, rows in (("train", train), ("test", test))
    }


def load_source(data_params: dict) -> dict[str, list[dict]]:
    source = data_params["source"]
    if source == "synthetic":
        return _from_synthetic(data_params["synthetic"])
    if source == "hf":
        return _from_hub(data_params["hf_revision"])
    if source.startswith("local:"):
        return _from_local(Path(source.removeprefix("local:")))
    raise DataError(f"params.yaml: data.source: unknown source {source!r}")


def split_stats(rows: list[dict]) -> dict:
    steps = [r["answer"].count("<<") for r in rows]
    return {
        "rows": len(rows),
        "mean_annotated_steps": round(statistics.fmean(steps), 3),
        "max_annotated_steps": max(steps),
        "mean_question_chars": round(statistics.fmean(len(r["question"]) for r in rows), 1),
    }


def main(params: dict, config: DownloadConfig = DownloadConfig()) -> dict:
    out = config.out_dir
    outputs = [out / f"{s}.jsonl" for s in SPLITS] + [out / "stats.json"]
    for stale in outputs:  # a failed run must not leave an older result looking current
        stale.unlink(missing_ok=True)

    data = load_source(params["data"])
    train_questions = {r["question"] for r in data["train"]}
    overlap = sum(r["question"] in train_questions for r in data["test"])
    stats = {"source": params["data"]["source"], "train_test_question_overlap": overlap}
    for split, rows in data.items():
        path = out / f"{split}.jsonl"
        atomic_write_jsonl(path, rows)
        stats[split] = split_stats(rows) | {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    atomic_write_json(out / "stats.json", stats)
    return stats
