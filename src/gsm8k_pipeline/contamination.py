"""Train/test contamination: test questions that also appear in the train split.

`download` counts them (stats.json) and warns, or refuses when `data.contamination` is `refuse`; every eval
records how many of the problems it scored are among them (its metrics' `contamination`), and the
leaderboard shows the count at the top of LEADERBOARD.md and in metrics/all.json when it is not zero
(leaderboard/sections.py: the leaderboard's text is not download's code).

Questions are compared after NFKC normalisation, case folding and collapsing whitespace: a copy that only
differs in spacing or capitals is still a copy. Punctuation and numbers are kept: "3 apples" and "4 apples"
are different problems.

Standard library only (the Snakefile may import the package's stdlib modules at parse time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from pathlib import Path

from . import PipelineError

log = logging.getLogger(__name__)
NORMALISATION = "NFKC, case-folded, whitespace collapsed"


def normalise(question: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def overlap(train: list[dict], test: list[dict]) -> dict:
    """Which test rows (1-based, as lines of test.jsonl) repeat a train question, and the first example."""
    first_train_row: dict[str, int] = {}
    for i, row in enumerate(train, 1):
        first_train_row.setdefault(normalise(row["question"]), i)
    rows = [
        (i, first_train_row[q]) for i, r in enumerate(test, 1) if (q := normalise(r["question"])) in first_train_row
    ]
    example = None
    if rows:
        test_row, train_row = rows[0]
        example = {"test_row": test_row, "train_row": train_row, "question": test[test_row - 1]["question"][:200]}
    return {
        "test_rows_in_train": [i for i, _ in rows],
        "test_rows": len(test),
        "example": example,
        "normalisation": NORMALISATION,
    }


def describe(found: dict) -> str:
    """One line: how many test questions are train questions, with the first example."""
    k, n, ex = len(found["test_rows_in_train"]), found["test_rows"], found["example"]
    question = " ".join(ex["question"].split())
    question = question if len(question) <= 80 else question[:79] + "…"
    return (
        f"{k} of {n} test questions ({100 * k / n:.1f} %) also appear in the train split "
        f"(compared {found['normalisation']}), e.g. test row {ex['test_row']} = train row {ex['train_row']}: "
        f"{question!r}"
    )


def check(found: dict, mode: str) -> None:
    """`data.contamination`: warn (one line on stderr) or refuse (a PipelineError) when there is overlap."""
    if not found["test_rows_in_train"]:
        return
    if mode == "refuse":
        raise PipelineError(
            f"data.contamination is refuse: {describe(found)}. Remove them from the source, "
            "or set data.contamination: warn to go on and have every eval count them"
        )
    log.warning(
        "contamination: %s; every eval's metrics and the leaderboard count them "
        "(data.contamination: refuse fails the download instead)",
        describe(found),
    )


def for_eval(test_file: Path, evaluated: int) -> dict | None:
    """What an eval of the first `evaluated` rows of `test_file` records: how many of them repeat a train
    question, from the stats.json that `download` wrote beside it. None (with a warning) for a test file
    that no download described; a PipelineError when stats.json describes another version of the file."""
    stats_path = test_file.with_name("stats.json")
    split = test_file.name.removesuffix(".jsonl")
    if split == "validation":  # carved from train (download.py), it overlaps no test row: nothing to count
        return None
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    if split != "test" or "contamination" not in stats:
        log.warning("contamination unknown: %s is not a test split with download stats beside it", test_file)
        return None
    sha256 = hashlib.sha256(test_file.read_bytes()).hexdigest()
    if sha256 != stats[split]["sha256"]:
        raise PipelineError(
            f"{stats_path} describes another {test_file.name} (sha256 {stats[split]['sha256'][:12]}…, "
            f"the file has {sha256[:12]}…): rerun the download stage"
        )
    rows = stats["contamination"]["test_rows_in_train"]
    return {
        "evaluated_in_train": sum(r <= evaluated for r in rows),
        "evaluated": evaluated,
        "split_in_train": len(rows),
        "split_rows": stats["contamination"]["test_rows"],
    }
