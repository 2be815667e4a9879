"""The leaderboard stage on planted eval results: records, groups over seeds, the Answer, the plots."""

import fnmatch
import json
import subprocess
import sys

import pandas as pd
import pytest

from gsm8k_pipeline import RunId
from gsm8k_pipeline.leaderboard import LeaderboardConfig, main, model_ids
from gsm8k_pipeline.results import record
from gsm8k_pipeline.stats import wilson_interval
from gsm8k_pipeline.traces import first_success

GOOD = "<start_working_out>2+2=<<2+2=4>>4<end_working_out><SOLUTION>4</SOLUTION>"
PARAMS = {"base_model": {"name": "tiny"}, "budgets": [8, 16], "seeds": [0, 1, 2]}


def test_first_success_needs_the_right_answer_in_the_exact_format():
    assert first_success(["the answer is 4", GOOD.replace(">4<", ">5<"), GOOD, GOOD], "4") == 2
    assert first_success(["4", "<SOLUTION>4</SOLUTION>"], "4") is None


def test_model_ids_cover_every_run():
    ids = model_ids({"budgets": [8, 16], "seeds": [0, 1]})
    assert ids[:2] == ["base", "prep_sft"] and len(ids) == 2 + 3 * 2 * 2
    assert {"full_sft_8_s0", "grpo_16_s1", "sft_from_traces_8_s1"} <= set(ids)


def test_records_carry_method_budget_and_seed():
    metrics = {
        "model_id": "grpo_16_s2",
        "accuracy": 0.5,
        "accuracy_ci95": [0.2, 0.8],
        "thinking_proportion": 1.0,
        "answer_proportion": 1.0,
        "n": 10,
        "generation": {},
    }
    r = record(metrics, PARAMS, "abc")
    assert (r["method"], r["budget"], r["seed"]) == ("grpo", 16, 2)
    assert record(metrics | {"model_id": "prep_sft"}, PARAMS, None)["seed"] is None


def plant(tmp_path, accuracy_of) -> LeaderboardConfig:
    """Eval outputs for every model of PARAMS (model id -> list of 0/1 per problem) and GRPO training logs."""
    config = LeaderboardConfig(eval_dir=tmp_path / "eval", out_dir=tmp_path / "out", models_dir=tmp_path / "models")
    config.out_dir.mkdir()
    for model_id in model_ids(PARAMS):
        correct = accuracy_of(model_id)
        (config.eval_dir / model_id).mkdir(parents=True)
        pd.DataFrame({"correct": correct}).to_csv(config.eval_dir / model_id / "debug.csv", index=False)
        k, n = sum(correct), len(correct)
        (config.eval_dir / f"{model_id}.json").write_text(
            json.dumps(
                {
                    "model_id": model_id,
                    "accuracy": k / n,
                    "accuracy_ci95": list(wilson_interval(k, n)),
                    "n": n,
                    "thinking_proportion": 1.0,
                    "answer_proportion": 1.0,
                    "generation": {},
                }
            )
        )
    for b in PARAMS["budgets"]:
        for s in PARAMS["seeds"]:
            log = config.models_dir / "grpo" / str(b) / f"s{s}" / "train_log.csv"
            log.parent.mkdir(parents=True)
            pd.DataFrame(
                {
                    "step": range(1, 9),
                    "epoch": [0.25 * i for i in range(1, 9)],
                    "reward": [1.0 + 0.1 * i for i in range(8)],
                }
            ).to_csv(log, index=False)
    return config


def test_the_answer_names_a_clear_winner_and_says_when_the_data_cant_tell(tmp_path):
    def accuracy_of(model_id):  # GRPO right on all 60 problems; the two SFTs alike, right on half
        if model_id.startswith("grpo"):
            return [1] * 60
        return [i % 2 for i in range(60)]

    config = plant(tmp_path, accuracy_of)
    main(PARAMS, config)
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    assert board.index("## Answer") < board.index("## Methods by budget") < board.index("## Every model")
    answer = board[board.index("## Answer") : board.index("## Methods by budget")]
    assert "at budget 8, grpo − full_sft = +50.0 (95 % CI +36.7 to +63.3, p = 0.0002): grpo is better" in answer
    assert "sft_from_traces − full_sft = +0.0 (95 % CI +0.0 to +0.0, p = 1): the data can't tell" in answer
    out = json.loads((config.out_dir / "all.json").read_text())
    assert out["groups"]["grpo_8"]["per_seed"] == [1.0, 1.0, 1.0]
    assert out["comparisons"]["grpo_vs_full_sft_16"]["ci95"][0] > 0.3
    # Two epochs of four steps: the first epoch's mean reward against the last's, on the same problems.
    assert out["grpo_reward"]["grpo_8_s0"] == {
        "first": pytest.approx(1.15),
        "last": pytest.approx(1.55),
        "compared": "first vs last epoch (same problems)",
    }
    assert len(out["models"]) == 2 + 3 * 2 * 3
    for png in ("accuracy_vs_budget.png", "grpo_reward.png"):
        assert (config.out_dir / png).read_bytes()[:4] == b"\x89PNG"
    curve = pd.read_csv(config.out_dir / "accuracy_vs_budget.csv")
    assert len(curve) == 3 * 2 * 3 and set(curve["seed"]) == {0, 1, 2}


def test_the_answer_says_when_a_method_ended_below_the_model_it_started_from(tmp_path):
    """prep_sft right on 40 of 60 problems, full_sft on 30 and SFT on traces on 35 (both lost accuracy by
    training), GRPO on 45: each difference comes with the falls of the methods it compares, and only those."""
    right = {"prep_sft": 40, "full_sft": 30, "grpo": 45, "sft_from_traces": 35, "base": 0}

    def accuracy_of(model_id):
        run = RunId.parse(model_id)
        return [int(i < right[run.method if run else model_id]) for i in range(60)]

    config = plant(tmp_path, accuracy_of)
    main(PARAMS, config)
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    answer = board[board.index("## Answer") : board.index("## Methods by budget")]
    grpo, traces = answer.split("\n- ")[1:3]
    assert grpo.count("— but full_sft ends below prep_sft, the model it started from (50.0 % against 66.7 %)") == 2
    both = "— but both end below prep_sft, the model they started from (sft_from_traces 58.3 %, full_sft 50.0 %, against 66.7 %)"
    assert traces.count(both) == 2 and "grpo ends below" not in answer and "both" not in grpo


def plant_selection(config, method, budget, scores: dict[float, float]):
    """metrics/select/<method>_<budget>.json as `gsm8k select` writes it, from {rate: validation accuracy}."""
    from gsm8k_pipeline.select import choose

    candidates = [{"learning_rate": r, "accuracy": a, "correct": round(a * 12), "n": 12} for r, a in scores.items()]
    path = config.selections / f"{method}_{budget}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"method": method, "budget": budget, **choose(candidates)}))


def test_the_leaderboard_shows_the_rates_chosen_on_validation_and_the_answer_says_when_one_is_at_an_edge(tmp_path):
    """GRPO's rate at budget 8 is its grid's largest (the best may lie beyond it); full_sft's is inside its
    grid, and full_sft ends below prep_sft: the Answer gives both notes, each once per difference it concerns."""
    right = {"prep_sft": 40, "full_sft": 30, "grpo": 45, "sft_from_traces": 45, "base": 0}

    def accuracy_of(model_id):
        run = RunId.parse(model_id)
        return [int(i < right[run.method if run else model_id]) for i in range(60)]

    config = plant(tmp_path, accuracy_of)
    for b in PARAMS["budgets"]:
        plant_selection(config, "full_sft", b, {3e-4: 0.25, 1e-3: 0.5, 3e-3: 0.5})  # a tie: the smaller rate
        plant_selection(config, "grpo", b, {1.7e-5: 0.25, 5e-5: 0.5, 1.5e-4: 0.75 if b == 8 else 0.25})
        plant_selection(config, "sft_from_traces", b, {3e-4: 0.25, 1e-3: 0.5, 3e-3: 0.25})
    main(PARAMS, config)
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    assert board.index("## Answer") < board.index("## Learning rates chosen on validation") < board.index("## Methods")
    answer = board[board.index("## Answer") : board.index("## Learning rates chosen")]
    grpo, traces = answer.split("\n- ")[1:3]
    below = "— but full_sft ends below prep_sft, the model it started from (50.0 % against 66.7 %)"
    edge = "— the chosen learning rate of grpo sits at the edge of its grid"
    assert grpo.count(below) == 2 and grpo.count(edge) == 1
    assert f"grpo is better {below} {edge}; at budget 16" in grpo  # both notes, after the verdict they qualify
    assert "edge" not in traces
    table = board[board.index("## Learning rates chosen") : board.index("## Methods")]
    assert "| full_sft | 8 | 0.0003: 25.0 %, 0.001: 50.0 %, 0.003: 50.0 % | 0.001 | 12 |" in table
    assert "| grpo | 8 | 1.7e-05: 25.0 %, 5e-05: 50.0 %, 0.00015: 75.0 % | 0.00015 (edge of the grid) | 12 |" in table
    assert "| grpo | 16 | 1.7e-05: 25.0 %, 5e-05: 50.0 %, 0.00015: 25.0 % | 5e-05 | 12 |" in table
    out = json.loads((config.out_dir / "all.json").read_text())
    assert out["selection"]["grpo_8"]["chosen"] == 1.5e-4 and out["selection"]["grpo_8"]["at_edge"]
    assert out["selection"]["full_sft_16"]["chosen"] == 1e-3 and not out["selection"]["full_sft_16"]["at_edge"]
    assert edge in (config.out_dir / "answer.rst").read_text()


@pytest.mark.parametrize("scored", ["*", "*_s0"])
def test_boosters_table_compares_each_group_with_greedy_on_the_same_runs(tmp_path, scored):
    """Planted boosters: the calculator fixes problems 0-19 of every run (where greedy is wrong), maj@4 changes
    nothing, pass@4 is right everywhere. The table shows each protocol, and the best usable booster is the
    calculator with a gain whose interval excludes zero (pass@4, an oracle, is never chosen). Where only the
    seed-0 runs scored boosters (the default's eval.boosters.models), the table rests on those and says so."""
    config = plant(tmp_path, lambda model_id: [int(i % 3 == 0) for i in range(60)])
    for model_id in model_ids(PARAMS):
        if not fnmatch.fnmatchcase(model_id, scored) and model_id not in ("base", "prep_sft"):
            continue
        debug = pd.read_csv(config.eval_dir / model_id / "debug.csv")
        debug["correct:calculator"] = [1.0 if i < 20 else c for i, c in enumerate(debug["correct"])]
        debug["correct:maj@4"] = debug["correct"].astype(float)
        debug["correct:pass@4"] = 1.0
        debug.to_csv(config.eval_dir / model_id / "debug.csv", index=False)
        path = config.eval_dir / f"{model_id}.json"
        metrics = json.loads(path.read_text())
        metrics["boosters"] = {
            name: {"accuracy": debug[f"correct:{name}"].mean()} for name in ("calculator", "maj@4", "pass@4")
        }
        path.write_text(json.dumps(metrics))
        (config.eval_dir / model_id / "timings.json").write_text(
            json.dumps(
                {
                    "seconds": 2.0,
                    "boosters": {
                        name: {"seconds": s} for name, s in (("calculator", 3.0), ("maj@4", 8.0), ("pass@4", 8.0))
                    },
                }
            )
        )
    main(PARAMS, config)
    out = json.loads((config.out_dir / "all.json").read_text())
    grpo = out["boosters"]["grpo_8"]
    assert set(grpo["protocols"]) == {"greedy", "calculator", "maj@4", "pass@4"}
    assert grpo["protocols"]["pass@4"]["mean"] == 1.0
    assert grpo["best"] == "calculator"
    gain = grpo["gain"]
    assert gain["difference"] == pytest.approx(13 / 60) and gain["ci95"][0] > 0
    assert out["models"]["grpo_8_s0"]["boosters"]["maj@4"] == pytest.approx(20 / 60)
    seeds = [0, 1, 2] if scored == "*" else [0]
    assert grpo["runs"] == [f"grpo_8_s{s}" for s in seeds]
    assert bool(out["models"]["grpo_8_s1"]["boosters"]) == (scored == "*")
    board = (config.out_dir / "LEADERBOARD.md").read_text()
    assert board.index("## Methods by budget") < board.index("## Test-time boosters") < board.index("## Every model")
    assert f"| grpo | 8 | {', '.join(map(str, seeds))} | 33.3 (" in board and "| calculator: +21.7 (" in board
    assert "| prep_sft | — | — | 33.3 (" in board
    # What each protocol costs is in the timings file, never in the reproducible leaderboard.
    cost = json.loads((config.out_dir / "timings.json").read_text())["boosters_seconds_per_eval"]
    assert cost == {"greedy": 2.0, "calculator": 3.0, "maj@4": 8.0, "pass@4": 8.0}
    assert "seconds" not in (config.out_dir / "all.json").read_text() and "8.0" not in board


# `gsm8k leaderboard`'s writes in a process whose files may not grow past LIMIT bytes (RLIMIT_FSIZE: the
# write fails with EFBIG, as with a full disk): the plots and LEADERBOARD.md fit, answer.rst does not.
_LIMITED = """
import json, resource, signal, sys
from pathlib import Path
from gsm8k_pipeline.leaderboard import LeaderboardConfig, main
if len(sys.argv) > 2:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
root = Path(sys.argv[1])
main(json.loads((root / "params.json").read_text()),
     LeaderboardConfig(eval_dir=root / "eval", out_dir=root / "out", models_dir=root / "models"))
"""


def test_a_leaderboard_that_cannot_finish_leaves_none_of_its_files(tmp_path):
    """A leaderboard that hit ENOSPC left a new LEADERBOARD.md beside the old all.json and answer.rst, a mixed
    set that looks finished (issue 20, item 10): a failed run leaves none, and says so in one line."""
    config = plant(tmp_path, lambda model_id: [i % 2 for i in range(60)])
    (tmp_path / "params.json").write_text(json.dumps(PARAMS))
    subprocess.run([sys.executable, "-c", _LIMITED, str(tmp_path)], check=True, capture_output=True)
    sizes = {p.name: p.stat().st_size for p in config.out_dir.iterdir()}
    assert sizes["answer.rst"] > max(sizes[n] for n in ("LEADERBOARD.md", "accuracy_vs_budget.png"))
    limit = max(sizes[n] for n in ("LEADERBOARD.md", "accuracy_vs_budget.png", "grpo_reward.png")) + 1000
    proc = subprocess.run([sys.executable, "-c", _LIMITED, str(tmp_path), str(limit)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "cannot write the leaderboard (File too large)" in proc.stderr, proc.stderr
    assert sorted(p.name for p in config.out_dir.iterdir()) == []
