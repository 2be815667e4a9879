"""The GSM8K task's rows: reading and validating jsonl files, and the gold answer of a row.

Every stage that reads data/gsm8k/*.jsonl reads it through here, so a row means the same everywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import PipelineError

# A GSM8K gold: an integer, optionally with thousands commas, optionally negative or decimal.
GOLD_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")

# Row size limits. Real GSM8K's longest question has 985 characters and its longest answer 1,228 (train and
# test); a row far past that is a broken or hostile file, and one 50 MB question made base-model train a
# tokenizer and model past 3.9 GB before anything failed. Characters as Python counts them (code points).
MAX_QUESTION_CHARS = 4_000
MAX_ANSWER_CHARS = 8_000
# Bytes of one jsonl line, read before it is decoded: a line without an end is not read whole into memory.
# Real GSM8K's longest line has 1,744 bytes; a row at both limits above, \u-escaped, has under 100 KB.
MAX_LINE_BYTES = 1 << 20


class DataError(PipelineError, ValueError):
    """A row of a data file is invalid; the message starts with FILE:LINE."""


def validate_row(row, where: str) -> dict:
    """Check one GSM8K row; `where` is FILE:LINE for the error message."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in ("question", "answer"):
        if key not in row:
            raise DataError(f"{where}: missing key {key!r}")
        if not isinstance(row[key], str) or not row[key].strip():
            raise DataError(f"{where}: {key!r} must be a non-empty string")
    for key, limit in (("question", MAX_QUESTION_CHARS), ("answer", MAX_ANSWER_CHARS)):
        if len(row[key]) > limit:
            raise DataError(
                f"{where}: {key!r} has {len(row[key]):,} characters, more than the limit of "
                f"{limit:,} (task.MAX_{key.upper()}_CHARS; real GSM8K's longest is under 1,300)"
            )
    if row["answer"].count("####") != 1:
        raise DataError(f"{where}: answer must contain exactly one '####' line")
    gold = split_answer(row["answer"])[1]
    if not GOLD_RE.fullmatch(gold):
        raise DataError(f"{where}: gold answer after '####' is not a number: {gold[:40]!r}")
    return {"question": row["question"], "answer": row["answer"]}


def _records(path: Path, validate) -> list[dict]:
    """Every line of a jsonl file as `validate(obj, "FILE:LINE")`; any fault is a DataError naming the line."""
    rows = []
    try:
        f = open(path, "rb")  # bytes, so a decoding error can name its line
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    with f:
        # readline with a cap: iterating the file would read a line of any length into memory first.
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            where = f"{path}:{lineno}"
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"{where}: line longer than {MAX_LINE_BYTES:,} bytes (task.MAX_LINE_BYTES)")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{where}: not UTF-8 (byte {exc.start} of the line)") from None
            if not line.strip():
                raise DataError(f"{where}: empty line")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
            rows.append(validate(row, where))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def read_jsonl(path: Path) -> list[dict]:
    """Read and validate a GSM8K jsonl file; errors name the file and line."""
    return _records(path, validate_row)


def validate_trace(row, where: str) -> dict:
    """A row of a traces file (the traces stage's output): a question and the completion to train on."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in ("question", "completion"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise DataError(f"{where}: {key!r} must be a non-empty string")
    return row


def read_traces(path: Path) -> list[dict]:
    return _records(path, validate_trace)


def split_answer(answer: str) -> tuple[str, str]:
    """(reasoning, gold as written) of a GSM8K answer `reasoning\n#### N`: the one reading of the format
    (validate_row, gold, formatting.to_target, grader.gold_number). A valid row has exactly one '####'."""
    reasoning, _, final = answer.partition("####")
    return reasoning.strip(), final.strip()


def gold(answer: str) -> str:
    """A valid row's gold answer without thousands commas ("1,200" -> "1200")."""
    return split_answer(answer)[1].replace(",", "")
