"""The synthetic GSM8K generator: every annotation is right, chains are consistent,
output is deterministic, splits are disjoint, problems are varied, and impossible
requests fail fast."""

from __future__ import annotations

import ast
import operator
import random
import re
import time

import pytest

from gsm8k_pipeline import synthetic
from gsm8k_pipeline.synthetic import generate_problem, generate_splits

DEFAULTS = {"min_steps": 1, "max_steps": 4, "max_operand": 20, "max_value": 1000, "ops": ("+", "-", "*", "/")}
KNOB_SETTINGS = [
    {},
    {"min_steps": 3, "max_steps": 4, "max_operand": 50, "max_value": 200},
    {"min_steps": 2, "max_steps": 2, "ops": ("*", "/")},
    {"min_steps": 1, "max_steps": 3, "max_operand": 5, "max_value": 30, "ops": ("+", "-")},
    {"min_steps": 4, "max_steps": 4, "max_operand": 9, "max_value": 100},
]
ANNOTATION_RE = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def safe_eval(expr: str):
    """Evaluate `expr` if it is only integer literals and + - * /; anything else fails."""

    def walk(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        raise AssertionError(f"unexpected syntax in annotation {expr!r}")

    return walk(ast.parse(expr, mode="eval").body)


def check_problem(row: dict, knobs: dict) -> None:
    k = {**DEFAULTS, **knobs}
    assert set(row) == {"question", "answer"}
    lines = row["answer"].split("\n")
    final = re.fullmatch(r"#### (\d+)", lines[-1])
    assert final, lines[-1]
    assert all("####" not in line for line in lines[:-1])
    annotations = [ANNOTATION_RE.findall(line) for line in lines[:-1]]
    assert all(len(a) == 1 for a in annotations), row["answer"]  # exactly one per step line
    assert k["min_steps"] <= len(annotations) <= k["max_steps"]
    previous = None
    for line, [(expr, result)] in zip(lines[:-1], annotations):
        assert " " not in expr and re.fullmatch(r"\d+[-+*/]\d+", expr), expr
        left, op, right = re.split(r"([-+*/])", expr)
        value = safe_eval(expr)
        assert value == int(value) and str(int(value)) == result  # exact, integer
        assert 0 <= int(value) <= k["max_value"]
        assert op in k["ops"]
        if op in "+-":
            assert 1 <= int(right) <= k["max_operand"]
        else:
            assert 2 <= int(right) <= min(k["max_operand"], 9)
        if previous is not None:
            assert int(left) == previous  # each step continues from the last result
        else:
            assert f" {left} " in row["question"]  # the start count is stated
        assert f"{expr}=<<{expr}={result}>>{result} " in line  # restated before the annotation
        previous = int(result)
    assert int(final.group(1)) == previous


@pytest.mark.parametrize("knobs", KNOB_SETTINGS)
def test_every_annotation_and_chain_is_correct(knobs):
    for seed in range(5):
        rng = random.Random(seed)
        for _ in range(200):  # 5 settings x 5 seeds x 200 = 5000 problems
            check_problem(generate_problem(rng, **{**DEFAULTS, **knobs}), knobs)


def test_splits_are_valid_too():
    train, test = generate_splits(300, 50, seed=3, max_steps=2)
    for row in train + test:
        check_problem(row, {"max_steps": 2})


def test_deterministic_per_seed():
    assert generate_splits(200, 20, seed=7) == generate_splits(200, 20, seed=7)
    assert generate_splits(200, 20, seed=7) != generate_splits(200, 20, seed=8)

    def rows(seed):
        return [generate_problem(random.Random(seed), **DEFAULTS) for _ in range(3)]

    assert rows(1) == rows(1)


def test_test_split_does_not_depend_on_train_size():
    assert generate_splits(10, 30, seed=0)[1] == generate_splits(500, 30, seed=0)[1]


def test_splits_are_disjoint_and_sized():
    # Tight knobs make collisions between the two streams likely, so exclusion is exercised.
    knobs = {"max_steps": 1, "max_operand": 2, "ops": ("+",)}
    train, test = generate_splits(3000, 1000, seed=0, **knobs)
    assert (len(train), len(test)) == (3000, 1000)
    train_q, test_q = [r["question"] for r in train], [r["question"] for r in test]
    assert len(set(train_q)) == 3000 and len(set(test_q)) == 1000
    assert not set(train_q) & set(test_q)


def test_problems_are_diverse():
    train, _ = generate_splits(2000, 0, seed=0)
    questions = [r["question"] for r in train]
    assert len(set(questions)) == 2000
    assert len({q.split()[0] for q in questions}) >= 30  # names
    assert len({re.search(r"How many (.+?) does", q).group(1) for q in questions}) >= 20  # items
    assert len({len(r["answer"].split("\n")) - 1 for r in train}) == 4  # 1..4 steps all occur
    ops_used = {op for r in train for op in re.findall(r"<<\d+([-+*/])", r["answer"])}
    assert ops_used == {"+", "-", "*", "/"}
    answers = {r["answer"].rsplit("#### ", 1)[1] for r in train}
    assert len(answers) >= 100
    # Several templates per operation show up (the gerund in "After <gerund>, ...").
    gerunds = {re.match(r"After (\w+)", line).group(1) for r in train for line in r["answer"].split("\n")[:-1]}
    assert len(gerunds) >= 10


def test_impossible_request_fails_fast():
    start = time.process_time()  # CPU time: the work done, whatever else the machine runs
    with pytest.raises(ValueError, match="at most"):
        generate_splits(10**6, 10, seed=0, max_operand=1, max_steps=1, ops=("+",))
    assert time.process_time() - start < 1


def test_exhausted_space_raises(monkeypatch):
    # A generator with only 3 possible questions passes the upfront bound; the bounded
    # draw loop must still give up with a clear error instead of spinning forever.
    monkeypatch.setattr(
        synthetic, "generate_problem", lambda rng, **k: {"question": f"q{rng.randrange(3)}", "answer": "#### 1"}
    )
    with pytest.raises(ValueError, match="only 3 of 5 unique problems"):
        generate_splits(5, 0, seed=0)


@pytest.mark.parametrize(
    "knobs, message",
    [
        ({"ops": ("%",)}, "ops must be"),
        ({"ops": ()}, "ops must be"),
        ({"min_steps": 3, "max_steps": 2}, "min_steps"),
        ({"min_steps": 0}, "min_steps"),
        ({"max_operand": 0}, "max_operand"),
        ({"ops": ("*",), "max_value": 1}, "step problem fits"),  # 1*2 already exceeds it
    ],
)
def test_bad_knobs_are_rejected(knobs, message):
    with pytest.raises(ValueError, match=message):
        generate_splits(5, 5, seed=0, **knobs)
