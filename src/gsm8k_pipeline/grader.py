"""Answer grader for GSM8K, shared by evaluation, GRPO's rewards and traces (`gsm8k grade`: cli/grade.py).

Extraction order (`extract_answer`), on the completion with calculator annotations
`<<...>>` removed first (they restate intermediate results and are not answers):

1. the first complete `<SOLUTION>...</SOLUTION>` block (tags case-insensitive; the first
   closing tag pairs with the nearest opening tag before it, so an unclosed tag is ignored);
2. the first complete `\\boxed{...}` (braces balanced, so `\\boxed{\\frac{3}{4}}` works);
3. the first `#### N`, to the end of N's line;
4. the last "answer is N" (case-insensitive; only spaces, `:`, `*`, `=`, currency or a sign
   may sit between "is" and N), since models restate corrected answers at the end;
5. the last number in the text.

These first three are blocks, and a block is authoritative: when present, later rules are
never tried. A block's answer must be ONE number (or one fraction `a/b`, `\\frac{a}{b}`),
with any words, units or currency around it. Other numbers may appear only as arithmetic
(+ - x * / and brackets, at most 20 expressions of 200 characters) that equals the answer
exactly: the sides before "=" ("5 + 7 = 12") and bracket groups holding nothing else
("12 (5+7)"). Anything else is None: a hedge ("5 or 7", "between 5 and 7", "5, 6, 7, 8",
"7 (or maybe 8)", "5 = 7"), a notation not supported ("1e3", "3:30", "2 1/2"), no number,
or a fraction without an exact decimal (1/3). Free text (rules 4-5), the fallback for
completions without a block, is judged the same way on its final statement: the clause of
"answer is N" (N to the end of its sentence), or the sentence holding the last number (after
its last `=`, when it has one). So "maybe 5 or 7", "5, 6, 7, 8", "between 5 and 7",
"so we get 1e3", "it is 3:30" and an unclosed "<SOLUTION>5 or 7" give None, not their last
number. Fractions are only recognised in blocks and in `normalize_number`.

Numbers: ASCII digits; "1,234,567" is one number but "1,2,3" or "1, 2, 3" are a list of
numbers; a period not followed by a digit ends a sentence ("is 42." -> 42); `$ £ €`, `%`
and unit words around a number are ignored; `-`, U+2212 and other dashes are a minus sign
unless they follow a letter, digit or closing bracket ("5-3" is 5 and 3, not -3).
Values are canonical decimal strings ("1,234.50" -> "1234.5", "-0" -> "0", "007" -> "7")
and compared exactly with Decimal, never float. Exponents ("1e5") are not supported.

Every regex here matches in linear time (no nested or overlapping quantifiers), and the
block scans are single passes, so pathological completions stay fast.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from itertools import islice

from .arithmetic import evaluate

_MINUS = "-\u2212\u2010\u2011\u2012\u2013\u2014\u2015\ufe63\uff0d"  # hyphen, U+2212, dashes
_CURRENCY = "$£€"

# Digit runs joined by single commas, optional decimal part. Nothing after it is mandatory,
# so a match never backtracks; `.5` counts only when not part of "3.5.6".
_NUM = r"[0-9]+(?:,[0-9]+)*(?:\.[0-9]+)?|(?<![0-9.])\.[0-9]+"
_NUM_RE = re.compile(_NUM)
# What may separate "####"/"answer is" from its number; it shares no character with a
# number's first character, so there is exactly one way to split gap and number.
_GAP = "[\\s:*=" + re.escape(_CURRENCY + _MINUS + "+\\") + "]*"
_HASH_RE = re.compile("####" + _GAP + "(?P<num>" + _NUM + ")")
_ANSWER_IS_RE = re.compile(r"\banswer\s+is\b" + _GAP + "(?P<num>" + _NUM + ")", re.I)
_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")  # [^<>] stops at the next '<', so scans don't pile up
_OPEN_RE = re.compile(r"<solution>", re.I)
_CLOSE_RE = re.compile(r"</solution>", re.I)
_BRACE_RE = re.compile(r"\\boxed\s*\{|[{}]")
# Arithmetic a block may show beside its answer. A bracket group counts as such only when it
# holds nothing else (so "(or maybe 8)" does not); a character class, so matching is linear.
_ARITH_CHARS = "-0-9.,\\s+*/x\u00d7\u00f7" + _CURRENCY + "\u2212"
_PAREN_WORK_RE = re.compile("\\(([" + _ARITH_CHARS + "]*)\\)")
_LEAD_RE = re.compile("[^-0-9.(+" + _CURRENCY + "\u2212]*")  # words before the arithmetic starts
_TOKEN_RE = re.compile(r"[\s" + _CURRENCY + r"]*(?:(?P<num>" + _NUM + r")|(?P<op>[-+*/x\u00d7\u00f7()\u2212]))")
_OPS = {"x": "*", "\u00d7": "*", "\u00f7": "/", "\u2212": "-"}
# A derivation is short: these bound the arithmetic evaluated per block, so blocks stay fast.
_MAX_WORK, _MAX_STEPS = 200, 20  # characters per expression, expressions per block
# Free text's final statement (rules 4-5) is judged like a block, up to this many characters of it; a
# longer sentence keeps its last number (bounded work on pathological completions).
_MAX_SENTENCE = 2000
_SENTENCE_END_RE = re.compile(r"\n|[.!?](?![0-9])")


# --- numbers -------------------------------------------------------------------------


def _canonical(digits: str, negative: bool) -> str:
    """'007.50' -> '7.5'; string surgery rather than Decimal.normalize, which would round
    to the context precision (28 digits) and could print an exponent."""
    int_part, _, frac = digits.partition(".")
    int_part, frac = int_part.lstrip("0") or "0", frac.rstrip("0")
    value = f"{int_part}.{frac}" if frac else int_part
    return "-" + value if negative and value != "0" else value


def _is_negative(text: str, start: int) -> bool:
    """Is the number at text[start] preceded by a minus sign (possibly before `$`/`\\$`)?"""
    j = start
    if j and text[j - 1] in _CURRENCY:
        j -= 1
        if j and text[j - 1] == "\\":  # LaTeX "\$"
            j -= 1
    if not j or text[j - 1] not in _MINUS:
        return False
    # After a word or closing bracket a dash is subtraction or a range: "5-3", "10–12".
    return j == 1 or not (text[j - 2].isalnum() or text[j - 2] in ")]}")


def _is_list(token: str) -> bool:
    """True when the commas in a number token are not thousands grouping ("1,2,3", "12,5")."""
    groups = token.partition(".")[0].split(",")
    return len(groups) > 1 and not (len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]))


def _number(text: str, start: int, token: str, last: bool = False) -> str:
    """Canonical value of the number token found at text[start]; for a comma list, its first
    item (or its last, when last=True)."""
    if _is_list(token):
        head, dot, frac = token.partition(".")
        items = head.split(",")
        if last:
            return _canonical(items[-1] + dot + frac, False)  # after a comma: never signed
        token = items[0]
    return _canonical(token.replace(",", ""), _is_negative(text, start))


def _exact_decimal(numerator: str, denominator: str) -> str | None:
    """numerator/denominator as a canonical decimal, or None if it does not terminate."""
    try:
        q = Fraction(numerator) / Fraction(denominator)
        d, twos, fives = q.denominator, 0, 0
        while d % 2 == 0:
            d, twos = d // 2, twos + 1
        while d % 5 == 0:
            d, fives = d // 5, fives + 1
        if d != 1:  # e.g. 1/3: no exact decimal, so it can never equal a decimal gold
            return None
        shift = max(twos, fives)
        digits = str(abs(q.numerator) * 10**shift // q.denominator).rjust(shift + 1, "0")
    except (ValueError, ZeroDivisionError):  # x/0, or beyond Python's int/str digit limit
        return None
    return _canonical(digits[: len(digits) - shift] + "." + digits[len(digits) - shift :], q < 0)


def _single(text: str) -> tuple[bool, str | None]:
    """(True, value) if text holds exactly one number or one fraction (value None for a
    fraction with no exact decimal); (False, None) if it holds none or several."""
    found = list(islice(_NUM_RE.finditer(text), 3))  # never need more than 3 to decide
    if any(_is_list(m.group()) for m in found):
        return False, None
    if len(found) == 1:
        return True, _number(text, found[0].start(), found[0].group())
    if len(found) == 2:
        a, b = found
        sep = text[a.end() : b.start()].strip()
        if sep == "/" or (sep == "}{" and "frac{" in text[max(0, a.start() - 8) : a.start()]):
            numerator, denominator = (_number(text, m.start(), m.group()) for m in found)
            return True, _exact_decimal(numerator, denominator)
    return False, None


def normalize_number(text: str) -> str | None:
    """Canonical decimal string of the single number (or exact fraction) in text, else None.

    Surrounding currency, `%`, units and words are ignored: "$1,234.50" -> "1234.5",
    "−5 apples" -> "-5", "+3" -> "3", "3/4" -> "0.75", "1/3" -> None, "1 or 2" -> None.
    """
    return _single(text)[1]


# --- extraction rules ----------------------------------------------------------------


def _first_solution(text: str) -> str | None:
    """Content of the first complete <SOLUTION> block, or None. Pairs each closing tag with
    the nearest opening tag before it, so unclosed openings cost one scan, not one each."""
    pos = 0
    while close := _CLOSE_RE.search(text, pos):
        opening = None
        for opening in _OPEN_RE.finditer(text, pos, close.start()):
            pass
        if opening:
            return text[opening.end() : close.start()]
        pos = close.end()  # a stray closing tag: look for the next one
    return None


def _first_boxed(text: str) -> str | None:
    """Content of the earliest-opened \\boxed{...} whose braces balance, found in one pass
    with a brace stack (a regex cannot match nested braces, and rescanning is quadratic)."""
    stack: list[tuple[bool, int]] = []  # (opened by \boxed?, content start)
    best: tuple[int, int] | None = None
    first = text.find("\\boxed")
    if first < 0:
        return None
    for m in _BRACE_RE.finditer(text, first):  # braces before the first \boxed are irrelevant
        if m.group() != "}":
            stack.append((m.group() != "{", m.end()))
        elif stack:
            boxed, start = stack.pop()
            if boxed and (best is None or start < best[0]):
                best = (start, m.start())
    return text[best[0] : best[1]] if best else None


def _hash_line(text: str) -> str | None:
    """What follows the first `#### N` to the end of N's line, or None when no `#### N`."""
    m = _HASH_RE.search(text)
    if not m:
        return None
    end = text.find("\n", m.start("num"))
    return text[m.start() + 4 : end if end >= 0 else len(text)]


def _sentence_end(text: str, pos: int) -> int:
    """Where the sentence holding text[pos] ends: a line break, or `.`, `!`, `?` not inside a number."""
    m = _SENTENCE_END_RE.search(text, pos, pos + _MAX_SENTENCE + 1)
    return m.start() if m else min(len(text), pos + _MAX_SENTENCE + 1)


def _sentence_start(text: str, pos: int) -> int:
    """Where the sentence holding text[pos] starts (one scan over at most _MAX_SENTENCE characters)."""
    lo = max(0, pos - _MAX_SENTENCE - 1)
    start = lo
    for m in _SENTENCE_END_RE.finditer(text, lo, pos):
        start = m.end()
    return start


def _stated(clause: str) -> tuple[bool, str | None]:
    """(True, value) when a free-text clause states one number, as a block must (arithmetic that equals it
    may stand beside it); (True, None) when it states several (a hedge: "maybe 5 or 7", "between 5 and 7",
    "5, 6, 7, 8") or a notation not supported ("1e3", "3:30"); (False, None) when it is too long to judge."""
    if len(clause) > _MAX_SENTENCE:
        return False, None
    return True, _block_value(clause)


def _answer_is(text: str) -> tuple[bool, str | None]:
    """(found, value) of the last "answer is N", judged on its clause (N to the end of its sentence)."""
    m = None
    for m in _ANSWER_IS_RE.finditer(text):
        pass
    if not m:
        return False, None
    clause = text[m.start("num") - _lead(text, m.start("num")) : _sentence_end(text, m.end("num"))]
    judged, value = _stated(clause)
    return True, value if judged else _number(text, m.start("num"), m["num"])


def _lead(text: str, start: int) -> int:
    """How many characters of sign or currency directly precede the number at text[start]."""
    j = start
    while j > 0 and start - j < 3 and text[j - 1] in _CURRENCY + _MINUS + "\\":
        j -= 1
    return start - j


def _last_number(text: str) -> str | None:
    """The last number, when the sentence holding it states only it: after its last `=` when there is
    one ("so she makes 9 * 2 = 18 dollars"), else the whole sentence."""
    m = None
    for m in _NUM_RE.finditer(text):  # keep only the last match: cheap even for 1 MB
        pass
    if not m:
        return None
    start, end = _sentence_start(text, m.start()), _sentence_end(text, m.end())
    equals = text.rfind("=", start, m.start())
    clause = text[equals + 1 if equals >= 0 else start : end]
    judged, value = _stated(clause)
    return value if judged else _number(text, m.start(), m.group(), last=True)


def _evaluate(expr: str) -> Fraction | None:
    """Exact value of a short arithmetic expression (numbers, + - x * / and brackets), else None."""
    if len(expr) > _MAX_WORK:
        return None
    tokens: list = []
    pos, end = 0, len(expr.rstrip())
    while pos < end:
        m = _TOKEN_RE.match(expr, pos)
        if not m or (m["num"] and _is_list(m["num"])):
            return None
        tokens.append(Fraction(m["num"].replace(",", "")) if m["num"] else _OPS.get(m["op"], m["op"]))
        pos = m.end()
    return evaluate(tokens)  # no limits but the length: a block's arithmetic is short


def _block_value(content: str) -> str | None:
    """The one number a block states, else None. Besides it, a block may only show arithmetic
    that equals it exactly ("5 + 7 = 12", "12 (5+7)"); any other number makes the block a hedge
    ("5 or 7", "7 (or maybe 8)") or a notation not supported ("1e3", "3:30", "2 1/2")."""
    is_single, value = _single(content)
    if is_single:
        return value
    *sides, rest = content.split("=")
    if sides:  # "Total: 5 + 7 = 12": words may lead the first side
        sides[0] = _LEAD_RE.sub("", sides[0], count=1)
    work = [*sides, *_PAREN_WORK_RE.findall(rest)]
    if len(work) > _MAX_STEPS:
        return None
    is_single, value = _single(_PAREN_WORK_RE.sub(" ", rest))
    if not is_single or value is None:
        return None
    return value if all(_evaluate(w) == Fraction(value) for w in work) else None


def extract_answer(completion: str) -> str | None:
    """The completion's final answer as a canonical decimal string, or None (see module doc)."""
    text = _ANNOTATION_RE.sub("", completion).replace("{,}", ",")  # LaTeX 1{,}000
    for block in (_first_solution(text), _first_boxed(text), _hash_line(text)):
        if block is not None:
            return _block_value(block)  # authoritative, even when it holds no (single) number
    found, value = _answer_is(text)
    return value if found else _last_number(text)


# --- grading -------------------------------------------------------------------------


def gold_number(gold: str) -> str:
    """Canonical gold answer from a full GSM8K answer (the number after its `####`, task.split_answer) or
    a bare number ("72", "1,200", "-3"); raises ValueError when there is no (single) number."""
    from .task import split_answer

    value = normalize_number(split_answer(gold)[1] if "####" in gold else gold)
    if value is None:
        raise ValueError(f"gold has no number: {gold[:60]!r}")
    return value


def answers_match(extracted: str | None, gold: str) -> bool:
    """Exact numeric equality ("3.50" == "3.5"); gold may be a full GSM8K answer."""
    expected = gold_number(gold)
    value = None if extracted is None else normalize_number(extracted)
    return value is not None and Decimal(value) == Decimal(expected)


def grade(completion: str, gold: str) -> tuple[str | None, bool]:
    """(extracted answer, is it correct)."""
    extracted = extract_answer(completion)
    return extracted, answers_match(extracted, gold)
