"""The output format the models learn, and how problems become prompts and targets.

Target: <start_working_out>reasoning<end_working_out><SOLUTION>N</SOLUTION>
"""

from __future__ import annotations

import re

from .task import gold, split_answer

START_WORKING = "<start_working_out>"
END_WORKING = "<end_working_out>"
SOLUTION_START = "<SOLUTION>"
SOLUTION_END = "</SOLUTION>"
FORMAT_TOKENS = (START_WORKING, END_WORKING, SOLUTION_START, SOLUTION_END)

_THINKING_RE = re.compile(re.escape(START_WORKING) + r".*?" + re.escape(END_WORKING), re.S)
_ANSWER_RE = re.compile(re.escape(SOLUTION_START) + r".*?" + re.escape(SOLUTION_END), re.S)


def to_target(answer: str) -> str:
    """A GSM8K answer rewritten in the output format the models learn."""
    reasoning, final = split_answer(answer)[0], gold(answer)
    return f"{START_WORKING}{reasoning}{END_WORKING}{SOLUTION_START}{final}{SOLUTION_END}"


def prompt_messages(question: str, system: str | None) -> list[dict]:
    """The conversation a model sees for one problem (params: prompt.system)."""
    system_turn = [{"role": "system", "content": system}] if system else []
    return system_turn + [{"role": "user", "content": question}]


def has_thinking(completion: str) -> bool:
    return _THINKING_RE.search(completion) is not None


def has_answer(completion: str) -> bool:
    return _ANSWER_RE.search(completion) is not None
