"""``benchmarks/labour_world.py``'s bookkeeping: one curve shape for DUET and M-alone runs (M alone's training
accuracy recovered from its penalised score), and the per-seed and across-seed tables with the target's verdict."""

import importlib.util
from pathlib import Path

import pytest

from duet_verl.testing import frontier
from duet_verl.testing.labour_world import RL_SETTINGS
from duet_verl.testing.learning_world import training_curve

spec = importlib.util.spec_from_file_location(
    "labour_benchmark", Path(__file__).parents[2] / "benchmarks/labour_world.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_curves_have_one_shape_and_m_alone_accuracy_is_score_plus_penalty():
    duet = {"3": {"duet/large_response_length_mean": 40.0, "duet/small_accuracy": 0.9, "duet/lambda": 0.2}}
    assert training_curve(duet, RL_SETTINGS, lam=None) == {3: {"large_length": 40.0, "accuracy": 0.9, "lambda": 0.2}}
    alone = {"1": {"response_length/mean": 48.0, "critic/score/mean": -0.25}}  # 0.75 correct, penalty 0.5 · 48 / 24
    rows = training_curve(alone, RL_SETTINGS, lam=0.5)
    assert rows[1]["accuracy"] == pytest.approx(0.75)
    assert rows[1]["large_length"] == 48.0 and "lambda" not in rows[1]


def summary(seed: int, duet_tokens: float) -> dict:
    def row(key, accuracy, large, small=0.0):
        return {"key": key, "system": bench.LABELS.get(key, key), "accuracy": accuracy, "accuracy_ci95": [0, 1],
                "large_tokens": large, "small_tokens": small, "cost_world": frontier.cost(large, small, 0.6),
                "cost_paper": frontier.cost(large, small, frontier.PAPER_RATIO)}  # fmt: skip

    table = [row("warm_large", 1.0, 80), row("grpo", 0.99, 78), row("penalty_0.5", 0.99, 60),
             row("duet", 0.99, duet_tokens, 45)]  # fmt: skip
    return {"seed": seed, "table": table, "target": frontier.target({r["key"]: r for r in table})}


def test_tables_report_every_seed_and_its_verdict():
    met, missed = summary(0, 25.0), summary(1, 60.0)
    assert met["target"]["met"] and not missed["target"]["met"]
    assert "Target (met" in bench.markdown(met) and "vs penalty_0.5: 0.42" in bench.markdown(met)
    table = bench.across_seeds([met, missed])
    assert "| DUET: trained M → trained m | 99.0%, 25.0, 28.4 | 99.0%, 60.0, 63.4 |" in table
    assert "seed 0 met, seed 1 not met" in table


def test_a_failed_run_is_named_with_its_log(tmp_path):
    from duet_verl.testing.learning_world import run

    log_path = tmp_path / "penalty_0.5" / "train.log"
    with pytest.raises(RuntimeError, match=r"^penalty_0\.5 \(bash -c\) failed \(exit 3\); log .*train\.log:\nboom"):
        run(["bash", "-c", "echo boom; exit 3"], log_path)
    assert log_path.read_text() == "boom\n"


def test_a_repeated_race_seed_gets_its_own_folder(tmp_path):
    first = bench.unused_folder(tmp_path, "race_seed0")
    first.mkdir()
    second = bench.unused_folder(tmp_path, "race_seed0")
    assert (first.name, second.name) == ("race_seed0_0", "race_seed0_1")
