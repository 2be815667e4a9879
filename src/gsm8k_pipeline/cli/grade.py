"""`gsm8k grade IN.jsonl [-o OUT.jsonl]`: grade a JSONL file of completions with the grader (grader.py).

A tool, not a stage: no stage imports this module, so editing it reruns nothing.
"""

from __future__ import annotations

import json
import os

from .. import PipelineError
from ..fileio import atomic_write_jsonl
from ..grader import gold_number, grade


class GradeInputError(PipelineError, ValueError):
    """A malformed grading input: "FILE:LINE: reason", or "FILE: no records" for an empty file."""


def _check_record(raw: bytes) -> dict:
    """The record on one input line; raises ValueError with the reason it is malformed."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    for key in ("completion", "gold"):
        if key not in record:
            raise ValueError(f'missing key "{key}"')
        if not isinstance(record[key], str):
            raise ValueError(f'"{key}" must be a string')
    gold_number(record["gold"])
    return record


def grade_jsonl(in_path, out_path=None) -> tuple[int, int]:
    """Grade a JSONL file of {"completion", "gold"} records; return (correct, total).

    Every line is validated before anything is written, so a malformed line raises
    GradeInputError ("FILE:LINE: reason") and leaves no output. Blank lines are skipped; a file
    with no records is an error too, since "0/0" would read as a run that graded nothing wrong.
    With out_path, each record is written back with "extracted" and "correct" added, via a
    temp file in the same directory and os.replace, so readers never see a partial file.
    """
    results = []
    with open(in_path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                record = _check_record(raw)
            except ValueError as e:
                raise GradeInputError(f"{os.fspath(in_path)}:{lineno}: {e}") from None
            extracted, correct = grade(record["completion"], record["gold"])
            results.append({**record, "extracted": extracted, "correct": correct})
    if not results:
        raise GradeInputError(f"{os.fspath(in_path)}: no records (the file is empty or blank)")
    if out_path is not None:
        atomic_write_jsonl(out_path, results)
    return sum(r["correct"] for r in results), len(results)


def _run(args) -> int:
    try:
        k, n = grade_jsonl(args.input, args.output)
    except OSError as e:  # unreadable input or unwritable output: the user's to fix, so no traceback
        raise PipelineError(e) from None
    print(f"accuracy: {k / n:.4f} ({k}/{n})")
    return 0


def add_cli(subparsers) -> None:
    """Register `grade IN.jsonl [-o OUT.jsonl]` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "grade",
        help="grade completions against gold answers",
        description='Grade a JSONL file of {"completion": str, "gold": str} records and print '
        "`accuracy: X (k/n)`. With -o, also write each record with "
        '"extracted" and "correct" added.',
    )
    parser.add_argument("input", metavar="IN.jsonl", help='one {"completion", "gold"} record per line')
    parser.add_argument(
        "-o", "--output", metavar="OUT.jsonl", default=None, help='also write the records with "extracted", "correct"'
    )
    parser.set_defaults(func=_run)
