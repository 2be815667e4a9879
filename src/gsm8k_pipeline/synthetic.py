"""Deterministic GSM8K-format word problems, for runs where the Hugging Face hub is unreachable.

A problem is a chain: someone starts with some items, then 1-4 steps each add, subtract,
multiply or divide the running count, and the question asks the final count. The answer
has one line per step with a GSM8K calculator annotation, then `#### N`:

    Question: Mia has 12 apples. Then Mia buys 5 more apples. How many apples does Mia have now?
    Answer:   After buying 5 more, Mia has 12+5=<<12+5=17>>17 apples.
              #### 17

The default pipeline trains a tiny random Llama on this for minutes on a CPU, so the
answer lines are deliberately regular (one fixed shape per step: "After <doing>, NAME has
a<op>b=<<a<op>b=c>>c ITEMS.") and the numbers small; the variety (names, items, several
sentence templates per operation, connectors) lives in the question, so train and test
differ in wording while the reasoning pattern stays copyable.

Knobs (keyword arguments of `generate_problem` / `generate_splits`):
    min_steps, max_steps  number of steps (annotation lines), drawn uniformly in between.
    max_operand           the start count and the +/- amounts are drawn from [1, max_operand];
                          multipliers and divisors from [2, min(max_operand, 9)], i.e. times
                          tables a small model can memorise.
    max_value             no running count ever exceeds it; a step that would is not drawn.
    ops                   the operations allowed, a subset of "+", "-", "*", "/".
All counts stay positive integers: subtraction leaves at least 1 and division is exact.

Determinism: only `random.Random` streams seeded from the arguments and tuples/lists are
used (never set iteration or `hash`), so output does not depend on PYTHONHASHSEED.
"""

from __future__ import annotations

import random

NAMES = (
    "Mia",
    "Tom",
    "Ava",
    "Liam",
    "Noah",
    "Emma",
    "Olivia",
    "Ethan",
    "Lucas",
    "Sophia",
    "Isabella",
    "James",
    "Amelia",
    "Benjamin",
    "Harper",
    "Mason",
    "Ella",
    "Logan",
    "Chloe",
    "Jack",
    "Lily",
    "Owen",
    "Grace",
    "Leo",
    "Zoe",
    "Ryan",
    "Nora",
    "Sam",
    "Ruby",
    "Max",
    "Maya",
    "Ben",
    "Alice",
    "Omar",
    "Priya",
    "Carlos",
    "Hana",
    "Kofi",
    "Elena",
    "Yuki",
)
ITEMS = (  # (singular, plural)
    ("apple", "apples"),
    ("marble", "marbles"),
    ("sticker", "stickers"),
    ("pencil", "pencils"),
    ("cookie", "cookies"),
    ("book", "books"),
    ("card", "cards"),
    ("shell", "shells"),
    ("stamp", "stamps"),
    ("balloon", "balloons"),
    ("crayon", "crayons"),
    ("bead", "beads"),
    ("candy", "candies"),
    ("orange", "oranges"),
    ("ribbon", "ribbons"),
    ("button", "buttons"),
    ("toy car", "toy cars"),
    ("feather", "feathers"),
    ("cupcake", "cupcakes"),
    ("eraser", "erasers"),
    ("notebook", "notebooks"),
    ("flower", "flowers"),
    ("banana", "bananas"),
    ("muffin", "muffins"),
    ("puzzle", "puzzles"),
    ("rock", "rocks"),
)
# Friends are a few fixed phrases, not names: names would multiply the question space by
# 40 per step, which makes an over-large request impossible to reject quickly (_capacity).
FRIENDS = ("a friend", "a neighbor", "a classmate", "a cousin")

# Sentence templates. Placeholders: {name}, {friend}, {n} (the operand), {count} ("5 apples"),
# {count_more} ("5 more apples"), {item}/{items} (singular/plural), {others} ("2 friends").
STARTS = (
    "{name} has {count}.",
    "{name} starts with {count}.",
    "{name} owns {count}.",
    "{name} has a box with {count}.",
)
# Per operation: (question sentence, gerund restated in the answer line "After <gerund>, ...").
STEPS = {
    "+": (
        ("{name} buys {count_more}.", "buying {n} more"),
        ("{name} finds {count_more}.", "finding {n} more"),
        ("{name} gets {count_more} from {friend}.", "getting {n} more"),
        ("{name} is given {count_more}.", "receiving {n} more"),
    ),
    "-": (
        ("{name} gives {count} to {friend}.", "giving away {n}"),
        ("{name} loses {count}.", "losing {n}"),
        ("{name} sells {n} of the {items}.", "selling {n}"),
        ("{name} gives away {count}.", "giving away {n}"),
    ),
    "*": (
        ("{name} trades each {item} for {n} new {items}.", "trading each for {n}"),
        ("{name} gets enough {items} to have {n} times as many as before.", "getting {n} times as many"),
        ("{name} swaps every {item} for a pack of {n} {items}.", "swapping each for {n}"),
    ),
    "/": (
        ("{name} and {others} share the {items} equally.", "sharing equally among {n}"),
        ("{name} splits the {items} into {n} equal groups and keeps one group.", "keeping 1 of {n} equal groups"),
        ("{name} keeps only 1 out of every {n} {items}.", "keeping 1 of every {n}"),
    ),
}
CONNECTORS = ("Then ", "Next, ", "After that, ", "Later, ")  # before every step but the first
QUESTIONS = (
    "How many {items} does {name} have now?",
    "How many {items} does {name} have in the end?",
    "How many {items} does {name} have at the end?",
    "How many {items} does {name} end up with?",
)
_APPLY = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__, "/": int.__floordiv__}
_RESTARTS = 1000  # chains that dead-end (e.g. only "/" and a prime) are redrawn this often


def _small_range(max_operand: int) -> range:
    """Multipliers/divisors: small times tables, so the arithmetic stays learnable."""
    return range(2, min(max_operand, 9) + 1)


def _count(n: int, item: tuple[str, str], more: bool = False) -> str:
    return f"{n} {'more ' if more else ''}{item[0] if n == 1 else item[1]}"


def _operands(op: str, value: int, max_operand: int, max_value: int) -> list[int]:
    """Operands for `op` that keep the running value a positive integer <= max_value."""
    if op == "+":
        return list(range(1, min(max_operand, max_value - value) + 1))
    if op == "-":  # leave at least 1: a story where everything is gone reads oddly
        return list(range(1, min(max_operand, value - 1) + 1))
    if op == "*":
        return [k for k in _small_range(max_operand) if value * k <= max_value]
    return [d for d in _small_range(max_operand) if value % d == 0 and value >= d]


def _check_knobs(min_steps, max_steps, max_operand, max_value, ops) -> tuple[str, ...]:
    ops = tuple(dict.fromkeys(ops))  # dedupe, keeping order (lists from YAML are fine)
    if not ops or any(op not in STEPS for op in ops):
        raise ValueError(f"ops must be a non-empty subset of {tuple(STEPS)}, got {ops!r}")
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"need 1 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
    if max_operand < 1 or max_value < 1:
        raise ValueError(f"max_operand and max_value must be >= 1, got {max_operand}, {max_value}")
    return ops


def generate_problem(
    rng: random.Random,
    *,
    min_steps: int = 1,
    max_steps: int = 4,
    max_operand: int = 20,
    max_value: int = 1000,
    ops=("+", "-", "*", "/"),
) -> dict:
    """One {"question", "answer"} row drawn from `rng`; see the module docstring for knobs."""
    ops = _check_knobs(min_steps, max_steps, max_operand, max_value, ops)
    n_steps = rng.randint(min_steps, max_steps)
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    for _ in range(_RESTARTS):
        value = rng.randint(1, min(max_operand, max_value))
        sentences = [rng.choice(STARTS).format(name=name, count=_count(value, item))]
        lines = []
        for i in range(n_steps):
            choices = [op for op in ops if _operands(op, value, max_operand, max_value)]
            if not choices:
                break  # dead end: redraw the chain from a new start
            op = rng.choice(choices)
            n = rng.choice(_operands(op, value, max_operand, max_value))
            template, gerund = rng.choice(STEPS[op])
            sentence = template.format(
                name=name,
                friend=rng.choice(FRIENDS),
                n=n,
                item=item[0],
                items=item[1],
                count=_count(n, item),
                count_more=_count(n, item, more=True),
                others=_count(n - 1, ("friend", "friends")),
            )
            sentences.append((rng.choice(CONNECTORS) if i else "") + sentence)
            result = _APPLY[op](value, n)
            expr = f"{value}{op}{n}"
            lines.append(f"After {gerund.format(n=n)}, {name} has {expr}=<<{expr}={result}>>{_count(result, item)}.")
            value = result
        else:
            sentences.append(rng.choice(QUESTIONS).format(items=item[1], name=name))
            return {"question": " ".join(sentences), "answer": "\n".join(lines + [f"#### {value}"])}
    raise ValueError(f"no {n_steps}-step problem fits max_operand={max_operand}, max_value={max_value}, ops={ops}")


def _capacity(min_steps, max_steps, max_operand, max_value, ops) -> int:
    """An upper bound on the number of distinct questions (every template times every value
    a slot may take), so a request that can never be met fails at once, not after millions
    of draws."""
    per_op = {
        "+": max_operand,
        "-": max_operand,
        "*": len(_small_range(max_operand)),
        "/": len(_small_range(max_operand)),
    }
    step = sum(per_op[op] * sum(len(FRIENDS) if "{friend}" in t else 1 for t, _ in STEPS[op]) for op in ops)
    start = len(NAMES) * len(ITEMS) * len(STARTS) * min(max_operand, max_value) * len(QUESTIONS)
    return start * sum(step * (step * len(CONNECTORS)) ** (s - 1) for s in range(min_steps, max_steps + 1))


def _unique(rng: random.Random, n: int, exclude: set[str], knobs: dict) -> list[dict]:
    """n problems whose questions are distinct and not in `exclude` (the set is only probed)."""
    rows, seen = [], set(exclude)
    attempts = 10 * n + 1000  # generous: at the default knobs duplicates are rare
    while len(rows) < n and attempts:
        attempts -= 1
        row = generate_problem(rng, **knobs)
        if row["question"] not in seen:
            seen.add(row["question"])
            rows.append(row)
    if len(rows) < n:
        raise ValueError(
            f"only {len(rows)} of {n} unique problems found; the knobs {knobs} "
            f"allow too few distinct questions (raise max_operand/max_steps or add ops)"
        )
    return rows


def generate_splits(n_train: int, n_test: int, seed: int, **knobs) -> tuple[list[dict], list[dict]]:
    """(train, test) rows: questions unique within each split and never shared between them.

    The test split comes from its own stream, so it stays the same when only n_train changes
    (evaluations across train sizes compare on identical problems); train then skips every
    test question. String seeds are hashed with SHA-512 by `random`, not with `hash()`.
    """
    knobs = {"min_steps": 1, "max_steps": 4, "max_operand": 20, "max_value": 1000, "ops": ("+", "-", "*", "/"), **knobs}
    knobs["ops"] = _check_knobs(**knobs)
    capacity = _capacity(**knobs)
    if n_train + n_test > capacity:
        raise ValueError(
            f"{n_train} train + {n_test} test unique problems requested, but the "
            f"knobs {knobs} allow at most {capacity} distinct questions"
        )
    test = _unique(random.Random(f"gsm8k-synthetic:{seed}:test"), n_test, set(), knobs)
    train = _unique(random.Random(f"gsm8k-synthetic:{seed}:train"), n_train, {r["question"] for r in test}, knobs)
    return train, test
