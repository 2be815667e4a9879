"""The text of the leaderboard: LEADERBOARD.md's sections (the Answer, the methods, every model, the
contamination warning, lm-evaluation-harness's table) and answer.rst, the front page of `snakemake --report`.
The boosters' table is boosters.py's. Only the leaderboard stage runs this code.
"""

from __future__ import annotations

from pathlib import Path

from .. import METHODS
from ..contamination import NORMALISATION
from ..harness import SOURCE_TASK, VARIANTS
from .boosters import render as boosters_table

# (first, second, question): each is answered at every budget by first − second.
QUESTIONS = [
    ("grpo", "full_sft", "GRPO vs SFT on the original solutions"),
    ("sft_from_traces", "full_sft", "SFT on GRPO's reasoning traces vs SFT on the original solutions"),
]


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def verdict(c: dict) -> str:
    lo, hi = c["ci95"]
    if lo > 0:
        return f"{c['first']} is better"
    if hi < 0:
        return f"{c['second']} is better"
    return "the data can't tell"


START = "prep_sft"  # the model every budgeted method starts from


def below_start(groups: dict, methods: tuple[str, ...], budget: int) -> str:
    """A note for the methods whose mean at `budget` ended below the model they started from (a method that
    lost accuracy by training: its difference to another says little about which method is better), or ""."""
    start = groups.get(START)
    fell = [
        (m, g["mean"]) for m in methods if (g := groups.get(f"{m}_{budget}")) and start and g["mean"] < start["mean"]
    ]
    if not fell:
        return ""
    if len(fell) == 1:
        ((method, mean),) = fell
        return f" — but {method} ends below {START}, the model it started from ({100 * mean:.1f} % against {100 * start['mean']:.1f} %)"
    means = ", ".join(f"{m} {100 * mean:.1f} %" for m, mean in fell)
    return f" — but both end below {START}, the model they started from ({means}, against {100 * start['mean']:.1f} %)"


def at_edge(selection: dict, methods: tuple[str, ...], budget: int) -> str:
    """A note for the methods whose learning rate, chosen on validation, is the smallest or largest of its
    grid (the best rate may lie beyond it, so the method may be under-tuned), or ""."""
    edge = [m for m in methods if selection.get(f"{m}_{budget}", {}).get("at_edge")]
    if not edge:
        return ""
    if len(edge) == 1:
        return f" — the chosen learning rate of {edge[0]} sits at the edge of its grid"
    return f" — the chosen learning rates of {' and '.join(edge)} sit at the edge of their grids"


def render_answer(comparisons: dict, groups: dict, n_seeds: int, selection: dict | None = None) -> list[str]:
    n = next(iter(groups.values()))["n"]
    lines = [
        "## Answer",
        "",
        f"Differences in accuracy (percentage points), each a mean over {n_seeds} seed(s) per method on the "
        f"same {n} test problems, with a 95 % two-level bootstrap interval (seeds, then problems; paired by "
        "problem) and a bootstrap p-value for no difference.",
        "",
    ]
    for first, second, question in QUESTIONS:
        parts = []
        for c in (c for c in comparisons.values() if c["first"] == first and c["second"] == second):
            lo, hi = c["ci95"]
            parts.append(
                f"at budget {c['budget']}, {first} − {second} = {_points(c['difference'])} "
                f"(95 % CI {_points(lo)} to {_points(hi)}, p = {c['p_value']:.2g}): {verdict(c)}"
                + below_start(groups, (first, second), c["budget"])
                + at_edge(selection or {}, (first, second), c["budget"])
            )
        lines.append(f"- **{question}:** " + "; ".join(parts) + ".")
    return lines + [""]


def _pct(mean: float, ci: list[float]) -> str:
    return f"{100 * mean:.1f} % ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})"


def markdown(
    records: list[dict],
    groups: dict,
    comparisons: dict,
    n_seeds: int,
    contaminated: dict | None = None,
    boosters: dict | None = None,
    selection: dict | None = None,
) -> str:
    """LEADERBOARD.md but its lm-eval table. `contaminated`: contamination(records); a warning above the
    Answer when it is loud. `boosters`: boosters.aggregate's, a table after the methods'. `selection`: the
    learning rates chosen on validation (leaderboard.selections), a table after the Answer."""
    notes = contamination_notes(contaminated) if contaminated else []
    loud = contaminated is not None and is_loud(contaminated)
    lines = ["# Leaderboard", "", *(notes if loud else []), *render_answer(comparisons, groups, n_seeds, selection)]
    lines += selection_table(selection or {})
    lines += [
        "## Methods by budget (mean over seeds)",
        "",
        "| method | budget | accuracy (95 % CI) | per seed | n |",
        "|---|---|---|---|---|",
    ]
    for g in sorted(groups.values(), key=lambda g: (g["budget"] or 0, g["method"])):
        per_seed = ", ".join(f"{100 * v:.1f}" for v in g["per_seed"]) if g["seeds"] else "—"
        lines.append(f"| {g['method']} | {g['budget'] or '—'} | {_pct(g['mean'], g['ci95'])} | {per_seed} | {g['n']} |")
    lines += ["", *boosters_table(boosters or {})]
    lines += [
        "## Every model",
        "",
        "| rank | model | method | budget | seed | accuracy (95 % CI, this run's problems) | answer | thinking | n |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rank, r in enumerate(sorted(records, key=lambda r: -r["accuracy"]), 1):
        lines.append(
            f"| {rank} | {r['id']} | {r['method']} | {r['budget'] or '—'} | "
            f"{'—' if r['seed'] is None else r['seed']} | {_pct(r['accuracy'], r['accuracy_ci95'])} | "
            f"{r['answer_proportion']:.2f} | {r['thinking_proportion']:.2f} | {r['n']} |"
        )
    if notes and not loud:  # all clear (or unknown): a note at the end, not above the Answer
        lines += ["", *notes[:-1]]
    return "\n".join(lines) + "\n"


def _rate(rate: float) -> str:
    return f"{rate:g}"


def selection_table(selection: dict) -> list[str]:
    """LEADERBOARD.md's "Learning rates chosen on validation": per method and budget, every candidate's
    validation accuracy and the rate chosen (which every seed then trained with, and the test scored)."""
    if not selection:
        return []
    lines = [
        "## Learning rates chosen on validation",
        "",
        "Each method's learning rate, per budget, is the candidate of its grid with the best greedy accuracy "
        "on the validation split (one run at the first seed per candidate; a tie goes to the smaller rate); "
        "every seed then trains at it, and only those runs are scored on test.",
        "",
        "| method | budget | validation accuracy per learning rate | chosen | n |",
        "|---|---|---|---|---|",
    ]
    for s in sorted(selection.values(), key=lambda s: (s["budget"], METHODS.index(s["method"]))):
        scores = ", ".join(f"{_rate(c['learning_rate'])}: {100 * c['accuracy']:.1f} %" for c in s["candidates"])
        edge = " (edge of the grid)" if s["at_edge"] else ""
        n = s["candidates"][0]["n"]
        lines.append(f"| {s['method']} | {s['budget']} | {scores} | {_rate(s['chosen'])}{edge} | {n} |")
    return lines + [""]


def rst(
    groups: dict,
    comparisons: dict,
    n_seeds: int,
    images: list[Path],
    contaminated: dict | None = None,
    selection: dict | None = None,
) -> str:
    """The Answer, the methods table and the plots (inlined as data URIs) as reStructuredText: the
    workflow description of Snakemake's HTML report, so the report opens on the answer (and on a
    contamination warning, when there is one)."""
    import base64

    warning = contamination_notes(contaminated) if contaminated and is_loud(contaminated) else []
    # The Answer's Markdown (bullets, **bold**) is also valid reST.
    lines = ["The answer", "==========", "", *warning, *render_answer(comparisons, groups, n_seeds, selection)[2:]]
    lines += [
        "Methods by budget (mean over seeds)",
        "-----------------------------------",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - method",
        "     - budget",
        "     - accuracy (95 % CI)",
        "     - per seed",
    ]
    for g in sorted(groups.values(), key=lambda g: (g["budget"] or 0, g["method"])):
        per_seed = ", ".join(f"{100 * v:.1f}" for v in g["per_seed"]) if g["seeds"] else "—"
        lines += [
            f"   * - {g['method']}",
            f"     - {g['budget'] or '—'}",
            f"     - {_pct(g['mean'], g['ci95'])}",
            f"     - {per_seed}",
        ]
    lines += [""]
    for image in images:
        data = base64.b64encode(image.read_bytes()).decode()
        # docutils refuses lines over 10,000 characters; an image URI may continue on indented lines.
        lines += [
            ".. image:: data:image/png;base64,",
            *(f"   {data[i : i + 76]}" for i in range(0, len(data), 76)),
            f"   :alt: {image.stem}",
            "",
        ]
    return "\n".join(lines)


# --- contamination ---------------------------------------------------------------------------------------


def contamination(records: list[dict]) -> dict:
    """The leaderboard's view, from every model's record (its eval's `contamination`, None if unknown):
    the worst case over models, and each model's count."""
    known = [r for r in records if r.get("contamination") is not None]
    worst = max(
        (r["contamination"] for r in known),
        key=lambda c: (c["evaluated_in_train"], c["split_in_train"]),
        default={"evaluated_in_train": None, "evaluated": None, "split_in_train": None, "split_rows": None},
    )
    return {
        **worst,
        "normalisation": NORMALISATION,
        "by_model": {
            r["id"]: None if r.get("contamination") is None else r["contamination"]["evaluated_in_train"]
            for r in records
        },
    }


def is_loud(s: dict) -> bool:
    return bool(s["evaluated_in_train"] or s["split_in_train"])


def contamination_notes(s: dict) -> list[str]:
    """Markdown (also valid reStructuredText) lines: a bold warning when test questions repeat train ones,
    else a one-line all-clear; and the models whose evals could not tell."""
    unknown = sorted(m for m, k in s["by_model"].items() if k is None)
    lines = []
    if is_loud(s):
        k, n = s["evaluated_in_train"], s["evaluated"]
        lines.append(
            f"**Contamination: {k} of the {n} test problems scored ({100 * k / n:.1f} %) also appear in "
            f"the train split** ({s['split_in_train']} of {s['split_rows']} in the whole test split; "
            f"questions compared {s['normalisation']}). Every accuracy here counts them; "
            "`data.contamination: refuse` makes the download fail instead."
        )
    elif s["evaluated"] is not None:
        lines.append(
            f"Contamination: none of the {s['evaluated']} test problems scored (nor of the "
            f"{s['split_rows']} in the test split) appears in the train split."
        )
    if unknown:
        lines.append(f"Contamination unknown (eval metrics without the count) for: {', '.join(unknown)}.")
    return [line for pair in zip(lines, [""] * len(lines)) for line in pair]


# --- lm-evaluation-harness -------------------------------------------------------------------------------


def lm_eval_summary(harness: dict) -> dict:
    """The results of one model's lm-eval run without its timings and example (metrics/all.json)."""
    keep = (
        "apply_chat_template",
        "num_fewshot_requested",
        "num_fewshot_used",
        "strict_match",
        "flexible_extract",
        "n",
        "task_hash",
        "config_digest",
    )
    return {
        "version": harness["version"],
        "task_version": harness["task_version"],
        "variants": {name: {k: v[k] for k in keep} for name, v in harness["variants"].items()},
    }


def _score(s: dict) -> str:
    return f"{100 * s['accuracy']:.1f}" + (f" ± {100 * s['stderr']:.1f}" if s["stderr"] is not None else "")


def lm_eval_table(results: dict[str, dict], ours: dict[str, float]) -> str:
    """LEADERBOARD.md's lm-evaluation-harness section: one row per model and variant, beside our accuracy
    (`results`: model id -> eval metrics' lm_eval; `ours`: model id -> our accuracy). Empty when none ran."""
    if not results:
        return ""
    first = next(iter(results.values()))
    lines = [
        "## lm-evaluation-harness",
        "",
        f"lm-eval {first['version']}'s `{SOURCE_TASK}` task (v{first['task_version']}) on the first n problems of "
        "the local test split, few-shot examples from the local train split. strict-match scores the number after "
        '"#### ", flexible-extract the last number in the response; ± is lm-eval\'s standard error. `chat` '
        "applies the model's chat template with the examples as earlier turns. Shots: used (asked).",
        "",
        "| model | our accuracy | lm-eval variant | shots | strict-match | flexible-extract | n |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for model_id, h in results.items():
        # In VARIANTS' order, lm-eval's standard protocol first (the metrics JSON sorts its keys).
        for name, v in sorted(h["variants"].items(), key=lambda item: list(VARIANTS).index(item[0])):
            lines.append(
                f"| {model_id} | {100 * ours[model_id]:.1f} % | {name} | {v['num_fewshot_used']} "
                f"({v['num_fewshot_requested']}) | {_score(v['strict_match'])} | "
                f"{_score(v['flexible_extract'])} | {v['n']} |"
            )
            if v["note"]:
                notes.append(f"- {model_id}, {name}: {v['note']}.")
    return "\n" + "\n".join(lines + [""] + notes) + "\n"
