"""`download` stage: data/gsm8k/{train,validation,test}.jsonl + stats.json from the source named in params.

Every row is validated; one bad row fails the stage with FILE:LINE: reason, and nothing is dropped. The
validation split is the last `data.validation` rows of the source's train split: every training stage takes the
first rows of train.jsonl, so none trains on them, and they are held out from test's role (choices are made on
validation, test is read once). Carving the end keeps the rows before it where they were: a synthetic source
grown by the validation rows (its train stream only extends) gives the same train.jsonl as before.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass
from pathlib import Path

from . import contamination
from .fileio import atomic_write_json, atomic_write_jsonl
from .task import DataError, read_jsonl, validate_row

SPLITS = ("train", "test")  # the source's; download writes validation (carved from train) too
HF_DATASET = "openai/gsm8k"


@dataclass(frozen=True)
class DownloadConfig:
    out_dir: Path = Path("data/gsm8k")


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
    return {s: [validate_row(r, f"{HF_DATASET}@{revision}:{s}:{i}") for i, r in enumerate(ds[s], 1)] for s in SPLITS}


def _from_synthetic(knobs: dict) -> dict[str, list[dict]]:
    from .synthetic import generate_splits

    knobs = dict(knobs)
    try:
        train, test = generate_splits(knobs.pop("n_train"), knobs.pop("n_test"), knobs.pop("seed"), **knobs)
    except ValueError as exc:  # knobs the schema allows one by one but not together (min_steps > max_steps)
        raise DataError(f"data.synthetic: {exc}") from None
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
    if not rows:  # data.validation: 0
        return {"rows": 0}
    steps = [r["answer"].count("<<") for r in rows]
    return {
        "rows": len(rows),
        "mean_annotated_steps": round(statistics.fmean(steps), 3),
        "max_annotated_steps": max(steps),
        "mean_question_chars": round(statistics.fmean(len(r["question"]) for r in rows), 1),
    }


def main(params: dict, config: DownloadConfig = DownloadConfig()) -> dict:
    out = config.out_dir
    outputs = [out / f"{s}.jsonl" for s in (*SPLITS, "validation")] + [out / "stats.json"]
    for stale in outputs:  # a failed run must not leave an older result looking current
        stale.unlink(missing_ok=True)

    source = load_source(params["data"])
    # Against the source's whole train split: a test question repeated in validation counts as much.
    found = contamination.overlap(source["train"], source["test"])
    contamination.check(found, params["data"]["contamination"])  # refuse: fails before anything is written
    carve = params["data"]["validation"]
    if carve >= len(source["train"]):
        raise DataError(
            f"params.yaml: data.validation ({carve}) leaves no train rows: the source's train split has "
            f"{len(source['train'])}"
        )
    kept = len(source["train"]) - carve
    data = {"train": source["train"][:kept], "validation": source["train"][kept:], "test": source["test"]}
    stats = {
        "source": params["data"]["source"],
        "contamination": found,  # rows of the source's train split: train.jsonl's, then validation.jsonl's
        "train_test_question_overlap": len(found["test_rows_in_train"]),
        "validation_test_question_overlap": len(
            contamination.overlap(data["validation"], data["test"])["test_rows_in_train"]
        ),
    }
    for split, rows in data.items():
        path = out / f"{split}.jsonl"
        atomic_write_jsonl(path, rows)
        stats[split] = split_stats(rows) | {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    atomic_write_json(out / "stats.json", stats)
    return stats
