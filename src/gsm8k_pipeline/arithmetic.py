"""The one exact evaluator of the arithmetic GSM8K writes: numbers, `+ - * /`, unary signs and parentheses.

Each caller reads its own text into tokens (numbers as Fractions, operators as "+-*/()") — the calculator
only ASCII arithmetic a model wrote, the grader the arithmetic around an answer ("$5 x 3") — and passes its
own Limits. Computed exactly (Fraction, never float); never `eval`. The grammar, by recursive descent:
sum := product (('+'|'-') product)*, product := factor (('*'|'/') factor)*,
factor := ('+'|'-') factor | '(' sum ')' | number.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Limits:
    max_depth: int | None = None  # deepest parenthesis nesting; unary signs nest too, up to twice this
    max_magnitude: int | None = None  # largest |numerator| or denominator of any number or intermediate value


class _Refused(Exception):
    """Not an expression of the grammar, a division by zero, or beyond the limits."""


def evaluate(tokens: list, limits: Limits = Limits()) -> Fraction | None:
    """The exact value of `tokens`, or None when they are not one expression of the grammar, divide by
    zero, or go beyond `limits`."""
    tokens = [*tokens, None]  # end marker: every lookahead is in range
    pos = 0

    def check(value: Fraction) -> Fraction:
        bound = limits.max_magnitude
        if bound is not None and (abs(value.numerator) > bound or value.denominator > bound):
            raise _Refused
        return value

    def too_deep(depth: int, factor: int = 1) -> bool:
        return limits.max_depth is not None and depth > factor * limits.max_depth

    def sum_(depth: int) -> Fraction:
        nonlocal pos
        value = product(depth)
        while tokens[pos] in ("+", "-"):
            op = tokens[pos]
            pos += 1
            rhs = product(depth)
            value = check(value + rhs if op == "+" else value - rhs)
        return value

    def product(depth: int) -> Fraction:
        nonlocal pos
        value = factor(depth)
        while tokens[pos] in ("*", "/"):
            op = tokens[pos]
            pos += 1
            rhs = factor(depth)
            if op == "/" and rhs == 0:
                raise _Refused
            value = check(value * rhs if op == "*" else value / rhs)
        return value

    def factor(depth: int) -> Fraction:
        nonlocal pos
        token = tokens[pos]
        if token in ("+", "-"):
            pos += 1
            if too_deep(depth + 1, 2):  # "- - - - 1" nests like parentheses do
                raise _Refused
            value = factor(depth + 1)
            return value if token == "+" else -value
        if token == "(":
            if too_deep(depth + 1):
                raise _Refused
            pos += 1
            value = sum_(depth + 1)
            if tokens[pos] != ")":
                raise _Refused
            pos += 1
            return value
        if isinstance(token, Fraction):
            pos += 1
            return check(token)
        raise _Refused

    try:
        value = sum_(0)
    except _Refused:
        return None
    return value if tokens[pos] is None else None  # trailing tokens, e.g. "2 3" or "1)"
