"""GRPO rewards, each bounded per completion and built on the grader.

| reward        | range       | pays for                                                              |
|---------------|-------------|-----------------------------------------------------------------------|
| format_exact  | {0, 1}      | the whole completion is exactly <start_working_out>…<end_working_out><SOLUTION>…</SOLUTION> |
| format_approx | [-1, 1]     | each of the four tags exactly once (+0.25 each); a missing or repeated tag costs 0.25 |
| correctness   | {0, 1}      | exactly one SOLUTION block, holding exactly the gold number           |
| number_match  | {0, 1}      | the grader's answer (any extraction rule) equals gold, with at most one SOLUTION block |

Why they can't be gamed: repeating a tag lowers format_approx and zeroes format_exact; a second
<SOLUTION> block zeroes correctness and number_match (no hedging between answers), and so does a block
holding several candidate numbers ("8 or 7", "7 (or maybe 8)": the grader extracts nothing); padding adds nothing,
since no reward grows with length. Weights live in params.yaml (grpo.rewards).
"""

from __future__ import annotations

import re

from .formatting import END_WORKING, FORMAT_TOKENS, SOLUTION_END, SOLUTION_START, START_WORKING
from .grader import answers_match, extract_answer, normalize_number

_EXACT_RE = re.compile(
    rf"\s*{re.escape(START_WORKING)}(?P<work>.*?){re.escape(END_WORKING)}\s*"
    rf"{re.escape(SOLUTION_START)}(?P<answer>.*?){re.escape(SOLUTION_END)}\s*",
    re.S,
)


def _text(completion) -> str:
    """TRL passes plain strings, or for conversational data a list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion)


def format_exact(text: str) -> float:
    match = _EXACT_RE.fullmatch(text)
    if not match or any(tag in match["work"] + match["answer"] for tag in FORMAT_TOKENS):
        return 0.0
    return 1.0


def format_approx(text: str) -> float:
    return sum(0.25 if text.count(tag) == 1 else -0.25 for tag in FORMAT_TOKENS)


def correctness(text: str, gold: str) -> float:
    if text.count(SOLUTION_START) != 1 or text.count(SOLUTION_END) != 1:
        return 0.0
    inside, closed, _ = text.partition(SOLUTION_START)[2].partition(SOLUTION_END)
    if not closed:  # </SOLUTION> came before <SOLUTION>
        return 0.0
    return 1.0 if answers_match(normalize_number(inside), gold) else 0.0


def number_match(text: str, gold: str) -> float:
    if text.count(SOLUTION_START) > 1:
        return 0.0
    return 1.0 if answers_match(extract_answer(text), gold) else 0.0


REWARDS = {
    "format_exact": lambda text, gold: format_exact(text),
    "format_approx": lambda text, gold: format_approx(text),
    "correctness": correctness,
    "number_match": number_match,
}


def reward_funcs(names: list[str]) -> list:
    """TRL reward functions (completions, answer, **kwargs) -> list[float], named for TRL's logs."""
    funcs = []
    for name in names:
        score = REWARDS[name]

        def func(completions, answer, _score=score, **kwargs) -> list[float]:
            return [_score(_text(c), gold) for c, gold in zip(completions, answer, strict=True)]

        func.__name__ = name
        funcs.append(func)
    return funcs
