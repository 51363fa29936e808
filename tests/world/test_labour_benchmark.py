"""``benchmarks/labour_world.py``'s bookkeeping: one curve shape for DUET and M-alone runs (M alone's training
accuracy recovered from its penalised score), and the per-seed and across-seed tables with the target's verdict."""

import importlib.util
import sys
from pathlib import Path

import pytest

from duet_verl.experiments import frontier
from duet_verl.experiments.runs import training_curve
from duet_verl.worlds.labour import RL_SETTINGS

spec = importlib.util.spec_from_file_location(
    "labour_benchmark", Path(__file__).parents[2] / "benchmarks/labour_world.py"
)
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # its dataclasses look their module up there
spec.loader.exec_module(bench)


def test_curves_have_one_shape_and_m_alone_accuracy_is_score_plus_penalty():
    duet = {"3": {"duet/large_response_length_mean": 40.0, "duet/small_accuracy": 0.9, "duet/lambda": 0.2}}
    assert training_curve(duet, RL_SETTINGS, lam=None) == {3: {"large_length": 40.0, "accuracy": 0.9, "lambda": 0.2}}
    alone = {"1": {"response_length/mean": 48.0, "critic/score/mean": -0.25}}  # 0.75 correct, penalty 0.5 · 48 / 24
    rows = training_curve(alone, RL_SETTINGS, lam=0.5)
    assert rows[1]["accuracy"] == pytest.approx(0.75)
    assert rows[1]["large_length"] == 48.0 and "lambda" not in rows[1]


def summary(seed: int, duet_tokens: float, alone_accuracy: float = 0.99) -> dict:
    def row(key, role, accuracy, large, small=0.0, decoding="M at T=0.6", **more):
        return {"key": key, "role": role, "system": key.removesuffix("_greedy"), "decoding": decoding,
                "accuracy": accuracy, "accuracy_ci95": [0, 1], "large_tokens": large, "small_tokens": small,
                "cost_world": frontier.cost(large, small, 0.6), "cost_paper": frontier.cost(large, small, 0.075),
                **more}  # fmt: skip

    table = [row("warm_large", "warm_single", 1.0, 80),
             row("warm_large_greedy", "warm_single", 0.99, 79, decoding="M greedy"),
             row("penalty_0.5", "single", alone_accuracy, 60), row("penalty_0.5_greedy", "single", 0.5, 40),
             row("duet_0.5", "duet", 0.99, duet_tokens, 45, signal_empty_fraction=0.0, right_fact_share=0.98,
                 accuracy_with_right_fact=1.0, small_oracle_accuracy=0.99)]  # fmt: skip
    return {"seed": seed, "table": table, "target": frontier.target({r["key"]: r for r in table})}


def test_systems_pair_duet_and_m_alone_at_every_lambda():
    runs = {system.key: system for system in bench.systems((0.25, 0.5), (1.0,), 0.5)}
    for lam in (0.25, 0.5):
        assert runs[f"duet_{lam}"].pair and runs[f"duet_{lam}"].lam == lam
        assert not runs[f"penalty_{lam}"].pair and runs[f"penalty_{lam}"].lam == lam
    assert "duet_1.0" not in runs and runs["penalty_1.0"].lam == 1.0
    assert runs["duet_adaptive"].lam == runs["penalty_adaptive"].lam == "adaptive" and runs["grpo"].lam is None
    assert runs["duet_0.5_grouped_per_signal"].extra == ("duet.small_grouping=signal",)
    assert runs["duet_0.5_m_frozen"].extra == ("duet.train_small=false",)
    assert bench.duet_lambda(0.5) == ("duet.lambda_schedule=constant", "duet.lambda_init=0.5")
    assert bench.duet_lambda("adaptive") == ()


def test_tables_report_every_seed_its_verdict_and_the_collapse_rates():
    met, missed = summary(0, 25.0), summary(1, 40.0, alone_accuracy=0.6)
    assert met["target"]["met"] and not missed["target"]["met"]
    text = bench.markdown(met)
    assert "Target met (accuracy floor 98.0%)" in text and "0.42× the M tokens" in text
    assert "| duet_0.5 | M at T=0.6 | 99.0 (0.0–100.0) | 25.0 | 45.0 |" in text and "| 98.0% (100.0%) | 99.0% |" in text
    # seed 1: no trained M alone keeps the floor, so warm M greedy is the bar (40 / 79 > 0.5)
    assert "shortest single model keeping it is warm_large (M greedy)" in bench.markdown(missed)
    table = bench.across_seeds([met, missed])
    assert "| duet_0.5 | M at T=0.6 | 99.0%, 25.0, 28.4 | 99.0%, 40.0, 43.4 | 0 of 2 |" in table
    assert "| penalty_0.5 | M at T=0.6 | 99.0%, 60.0, 60.0 | 60.0%, 60.0, 60.0 | 1 of 2 |" in table
    assert "- seed 0: Target met" in table and "- seed 1: Target not met" in table
    assert bench.legend(met["table"])["penalty_0.5_greedy"] == "penalty_0.5, greedy"


def test_a_failed_run_is_named_with_its_log(tmp_path):
    from duet_verl.experiments.runs import run

    log_path = tmp_path / "penalty_0.5" / "train.log"
    with pytest.raises(RuntimeError, match=r"^penalty_0\.5 \(bash -c\) failed \(exit 3\); log .*train\.log:\nboom"):
        run(["bash", "-c", "echo boom; exit 3"], log_path)
    assert log_path.read_text() == "boom\n"


def test_a_repeated_race_seed_gets_its_own_folder(tmp_path):
    first = bench.unused_folder(tmp_path, "race_seed0")
    first.mkdir()
    second = bench.unused_folder(tmp_path, "race_seed0")
    assert (first.name, second.name) == ("race_seed0_0", "race_seed0_1")


def test_metrics_come_back_from_verls_own_file_logger(tmp_path, monkeypatch):
    """What verl's JSONL logger writes (numpy values, a validation and a training line at one step) is what the
    benchmarks read: one dict per step, numbers only."""
    import numpy as np
    from verl.utils.tracking import FileLogger

    from duet_verl.experiments.runs import METRICS_FILE, file_logger, read_metrics

    env, overrides = file_logger(tmp_path)
    assert overrides == ("trainer.logger=[console,file]",)
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", env["VERL_FILE_LOGGER_PATH"])
    logger = FileLogger("duet_cpu", "run")
    logger.log({"val-duet/world_math/acc": np.float64(1.0)}, step=0)
    logger.log({"duet/lambda": np.float32(0.5), "duet/small_accuracy": 0.75, "training/epoch": 0}, step=1)
    logger.log({"val-duet/world_math/acc": 0.5, "note": "text"}, step=1)
    logger.finish()
    assert read_metrics(tmp_path / METRICS_FILE) == {
        0: {"val-duet/world_math/acc": 1.0},
        1: {"duet/lambda": 0.5, "duet/small_accuracy": 0.75, "training/epoch": 0.0, "val-duet/world_math/acc": 0.5},
    }
