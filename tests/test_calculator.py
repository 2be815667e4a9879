"""Calculator mode: the safe evaluator, and its insertion inside batched model.generate."""

import time

import pytest

from gsm8k_pipeline.calculator import MAX_CHARS, Calculator, calculate, call_in


@pytest.mark.parametrize(
    "expr, result",
    [
        ("12+5", "17"),
        ("17-3", "14"),
        ("6*7", "42"),
        ("84/4", "21"),
        ("10/4", "2.5"),
        ("1/3", "0.3333"),
        ("2/3", "0.6667"),
        ("3-10", "-7"),
        ("(2+3)*4", "20"),
        ("2+3*4", "14"),
        ("-(2+3)", "-5"),
        ("1.5*2", "3"),
        ("0.1+0.2", "0.3"),
        (" 12 + 5 ", "17"),
        ("((((1+1))))", "2"),
        ("100/8-0.5", "12"),
        ("7", "7"),
    ],
)
def test_exact_arithmetic_in_gsm8k_format(expr, result):
    assert calculate(expr) == result


@pytest.mark.parametrize(
    "expr",
    [
        "2**10",
        "9**9**9**9",
        "10**100000",  # exponents: refused, never computed
        "(" * 5000 + "1" + ")" * 5000,
        "(" * 11 + "1" + ")" * 11,  # too deep (or too long) nesting
        "-" * 50 + "1",  # unary chains nest too
        "1/0",
        "5/(3-3)",
        "1/(0*7)",  # division by zero
        "١٢+٥",
        "１２+５",
        "12+٥",
        "²+1",  # non-ASCII digits (Arabic-Indic, full-width, superscript)
        "9" * 16 + "*2",
        "99999999*99999999*99999999",  # beyond the magnitude bound
        "1" * (MAX_CHARS + 1),  # too long
        "__import__('os')",
        "x+1",
        "1e5",
        "1_000",
        "2 3",
        "1+",
        "(1",
        "1)",
        "",
        "abs(-1)",
        "1;2",
    ],
)
def test_hostile_or_invalid_expressions_are_refused_fast(expr):
    started = time.process_time()  # this process's CPU time: what the bound is about, whatever the load
    assert calculate(expr) is None
    assert time.process_time() - started < 0.05


def test_a_call_is_a_tail_ending_in_open_annotation_and_equals():
    assert call_in("Mia has 12+5=<<12+5=") == "17"
    assert call_in("Mia has 12+5=") is None  # an equals sign outside an annotation
    assert call_in("12+5=<<12+5=17>>17") is None  # a closed annotation
    assert call_in("<<2/0=") is None
    assert call_in("x" * 10_000 + "<<3*4=") == "12"  # only the tail is read


def _prompts():
    # Row 0 calls the calculator at once; row 1 calls it with a refused expression; rows 2-3 never call it.
    return ["Tom has 3*4=<<3*4=", "Ann has 2/0=<<2/0=", "Mia has 7 apples.", "How many"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from conftest import test_params
    from gsm8k_pipeline import base_model
    from gsm8k_pipeline.loading import load_for_inference
    from gsm8k_pipeline.synthetic import generate_splits

    train, _ = generate_splits(200, 10, 0)
    model, tokenizer = base_model.build_tiny(train, test_params()["base_model"]["tiny"], seed=1, system=None)
    out = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return load_for_inference(out)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from gsm8k_pipeline.loading import load_for_inference
    from hub import build

    return load_for_inference(build(tmp_path_factory.mktemp("hub")), "float32")


@pytest.mark.parametrize("which", ["tiny", "hub"])
def test_greedy_batch_inserts_results_only_where_called(which, request):
    from gsm8k_pipeline.generation import generate

    model, tokenizer = request.getfixturevalue(which)
    plain = generate(model, tokenizer, _prompts(), batch_size=4, max_new_tokens=6)
    calculator = Calculator(tokenizer)
    calc = generate(model, tokenizer, _prompts(), batch_size=4, max_new_tokens=6, processor=calculator)
    assert calc[0][0].startswith("12>>") and not plain[0][0].startswith("12>>")
    assert calc[1:] == plain[1:]  # refused and never-calling rows decode exactly as without the calculator
    assert calculator.calls == 1


@pytest.mark.parametrize("which", ["tiny", "hub"])
def test_sampling_with_several_returns_inserts_in_every_calling_sequence(which, request):
    import torch

    from gsm8k_pipeline.generation import generate

    model, tokenizer = request.getfixturevalue(which)
    torch.manual_seed(0)
    calculator = Calculator(tokenizer)
    out = generate(
        model,
        tokenizer,
        _prompts(),
        batch_size=2,
        max_new_tokens=6,
        do_sample=True,
        temperature=1.0,
        num_return_sequences=3,
        processor=calculator,
    )
    assert all(c.startswith("12>>") for c in out[0])
    assert not any(c.startswith("12>>") for c in out[1] + out[2] + out[3])
    assert calculator.calls >= 3  # (a random model may call it again later)


@pytest.mark.parametrize("calculator", [True, False])
def test_traces_sample_in_calculator_mode_when_asked_and_say_so(calculator, tmp_path, monkeypatch):
    from conftest import test_params
    from gsm8k_pipeline import base_model, traces
    from gsm8k_pipeline.fileio import atomic_write_jsonl
    from gsm8k_pipeline.synthetic import generate_splits

    train, _ = generate_splits(40, 2, 0)
    params = {**test_params(traces={"calculator": calculator}), "run": {"samples": 4, "output_dir": None}}
    model, tokenizer = base_model.build_tiny(train, params["base_model"]["tiny"], seed=1, system=None)
    model.save_pretrained(tmp_path / "grpo")
    tokenizer.save_pretrained(tmp_path / "grpo")
    monkeypatch.chdir(tmp_path)
    atomic_write_jsonl(tmp_path / "data/gsm8k/train.jsonl", train)
    stats = traces.main(params, traces.TracesConfig(grpo_model=tmp_path / "grpo", output_dir=tmp_path / "traces"))
    assert stats["calculator"] is calculator and stats["generation"]["calculator"] is calculator
    assert isinstance(stats["calculator_calls"], int) if calculator else stats["calculator_calls"] is None
