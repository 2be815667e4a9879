"""Calculator mode (GSM8K paper, Cobbe et al. 2021): when a model writes `<<expr=`, the calculator
computes `expr` and writes `result>>` for it, as the annotations in GSM8K's solutions read
(`12+5=<<12+5=17>>17`).

`calculate` is the evaluator. A model's text is untrusted input, so it is never `eval`ed: it accepts only
ASCII digits, `+ - * /`, unary signs and parentheses, with bounded length, nesting and magnitude, and
computes exactly (arithmetic.evaluate, the grader's evaluator too, with the calculator's limits). Anything
else — `**`, names, non-ASCII digits, division by zero — gives None, and nothing is written for the model.

`Calculator` runs it inside `model.generate`, batched (generation.generate(processor=Calculator(tokenizer))): a transformers LogitsProcessor that checks
each step, vectorised, which rows just emitted a token ending in "="; only those rows are decoded, and a
row whose text ends in `<<expr=` with a computable expr gets the result's tokens queued. A row with a
queue has every logit but its next forced token set to -inf, so greedy and sampled decoding both take it.
"""

from __future__ import annotations

import re
from collections import deque
from fractions import Fraction

from .arithmetic import Limits, evaluate

MAX_CHARS = 100  # longest expression evaluated (GSM8K's longest annotations are ~60 characters)
MAX_DEPTH = 10  # deepest parenthesis nesting
MAX_MAGNITUDE = 10**15  # largest |value| of any number or intermediate result (numerator and denominator)
MAX_DECIMALS = 4  # a non-integer result is written rounded to this many decimals

# One token: an ASCII number (digits, optional decimals) or an operator. [0-9], not \d: \d matches
# Arabic-Indic, full-width and other Unicode digits.
_TOKEN_RE = re.compile(r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)|(?P<op>[-+*/()]))")
# The tail that calls the calculator: `<<`, an expression without `<`, `>` or `=`, then `=` at the very end.
_CALL_RE = re.compile(r"<<([^<>=\n]{1," + str(MAX_CHARS) + r"})=\Z")


LIMITS = Limits(max_depth=MAX_DEPTH, max_magnitude=MAX_MAGNITUDE)


def _tokens(expr: str) -> list | None:
    """ASCII numbers (as Fractions) and operators, or None for any other character."""
    tokens, pos, end = [], 0, len(expr.rstrip())
    while pos < end:
        m = _TOKEN_RE.match(expr, pos)
        if m is None:
            return None
        tokens.append(Fraction(m["num"]) if m["num"] else m["op"])
        pos = m.end()
    return tokens


def format_result(value: Fraction) -> str:
    """As GSM8K writes results: integers as integers, others as a short decimal ("2.5", "0.3333")."""
    if value.denominator == 1:
        return str(value.numerator)
    scaled = round(value * 10**MAX_DECIMALS)  # exact rounding of the Fraction (half to even)
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**MAX_DECIMALS)
    frac_text = f"{frac:0{MAX_DECIMALS}d}".rstrip("0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


def calculate(expr: str) -> str | None:
    """The value of `expr` formatted for the model, or None when the calculator refuses it."""
    if len(expr) > MAX_CHARS or not expr.isascii():
        return None
    tokens = _tokens(expr)
    value = None if tokens is None else evaluate(tokens, LIMITS)
    return None if value is None else format_result(value)


def call_in(text: str) -> str | None:
    """The result to write after `text` when it ends in a calculator call `<<expr=`, else None."""
    m = _CALL_RE.search(text[-(MAX_CHARS + 3) :])
    return calculate(m.group(1)) if m else None


# --- inside model.generate ------------------------------------------------------------------------


def _ids_ending_in_equals(tokenizer) -> list[int]:
    """Vocab ids whose text ends in "=": only after one of these can a call `<<expr=` be complete."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return [i for i, t in enumerate(texts) if t.endswith("=")]


class Calculator:
    """Calculator mode for generation.generate(processor=...): each call makes a fresh processor for one
    batch (its state is per row of that batch); `calls` counts the results written over all batches."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.eq_ids = _ids_ending_in_equals(tokenizer)  # once: a hub vocabulary has ~150k entries
        self._processors = []

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self._processors)

    def __call__(self):
        processor = make_processor(self.tokenizer, self.eq_ids)
        self._processors.append(processor)
        return processor


def make_processor(tokenizer, eq_ids: list[int]):
    """A fresh CalculatorProcessor (per generate call: it keeps per-row state)."""
    from transformers import LogitsProcessor

    class CalculatorProcessor(LogitsProcessor):
        # Tokens decoded per triggered row: enough for the longest call `<<expr=` even at one char per token.
        TAIL = MAX_CHARS + 3

        def __init__(self):
            self.eq_ids = None  # a tensor on the inputs' device, made at the first step
            self.queues: dict[int, deque] = {}  # row -> forced token ids still to write
            self.calls = 0  # results written, over the whole batch

        def __call__(self, input_ids, scores):
            import torch

            if self.eq_ids is None:
                self.eq_ids = torch.tensor(eq_ids, dtype=input_ids.dtype, device=input_ids.device)
            # Vectorised: only rows whose last token ends in "=" can have just finished `<<expr=`.
            for row in torch.isin(input_ids[:, -1], self.eq_ids).nonzero().flatten().tolist():
                result = call_in(tokenizer.decode(input_ids[row, -self.TAIL :]))
                if result is not None:
                    self.queues[row] = deque(tokenizer.encode(result + ">>", add_special_tokens=False))
                    self.calls += 1
            if self.queues:
                rows = list(self.queues)
                forced = [self.queues[r].popleft() for r in rows]
                self.queues = {r: q for r, q in self.queues.items() if q}
                rows_t = torch.tensor(rows, device=scores.device)
                forced_t = torch.tensor(forced, device=scores.device)
                keep = scores[rows_t, forced_t]
                scores[rows_t] = float("-inf")
                # The forced token keeps its own logit: finite, so sampling's softmax stays defined.
                scores[rows_t, forced_t] = torch.where(torch.isfinite(keep), keep, torch.zeros_like(keep))
            return scores

    return CalculatorProcessor()
