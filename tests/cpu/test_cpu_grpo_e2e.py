"""verl's own trainer (``verl.trainer.main_ppo``) runs real GRPO on CPU through the duet-verl backend.

Two subprocess runs of ``recipes/run_grpo_cpu_tiny.sh`` (the README's CPU quickstart), shared by the asserts:
the normal one (GRPO, n=2, reference model with KL loss, validation once, 2 steps, the shaped demo reward) and
one whose weight sync is switched off, on the real reward path of the GPU baseline recipe (the DUET reward
manager with no custom function, rows from ``data_prep``). The rollout server starts from random weights
(``rollout.load_format=dummy``), so only a real weight sync can make its log-probs match the actor's. A third
run, its own test's, trains the benchmarks' M alone at DUET's adaptive λ (``duet_verl.experiments.adaptive_penalty``,
the recipe's ``ENTRY``) on the legacy trainer.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from duet_verl.experiments.adaptive_penalty import LAMBDA_METRIC
from duet_verl.experiments.runs import METRICS_FILE, file_logger, read_metrics

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "run_grpo_cpu_tiny.sh"


@dataclass
class Run:
    returncode: int
    output: str
    metrics: dict[int, dict[str, float]]
    seconds: float


def run_recipe(tiny_dir: Path, out_dir: Path, *overrides: str, env: dict[str, str] | None = None) -> Run:
    start = time.perf_counter()
    logger_env, logger = file_logger(out_dir)
    proc = subprocess.run(
        ["bash", str(RECIPE), *overrides, *logger],
        env={
            **os.environ,
            "TINY_DIR": str(tiny_dir),
            "OUT_DIR": str(out_dir),
            "LR": "1e-3",
            **logger_env,
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    metrics = read_metrics(out_dir / METRICS_FILE) if (out_dir / METRICS_FILE).exists() else {}
    return Run(proc.returncode, output, metrics, time.perf_counter() - start)


@pytest.fixture(scope="module")
def synced_run(tiny_assets, tmp_path_factory, record_wall_time) -> Run:
    run = run_recipe(tiny_assets["tokenizer"].parent, tmp_path_factory.mktemp("grpo_synced"))
    record_wall_time("verl main_ppo GRPO, 2 steps + validation (CPU)", run.seconds)
    assert run.returncode == 0, run.output[-6000:]
    return run


@pytest.fixture(scope="module")
def unsynced_run(tiny_assets, paper_data_overrides, tmp_path_factory, record_wall_time) -> Run:
    run = run_recipe(
        tiny_assets["tokenizer"].parent,
        tmp_path_factory.mktemp("grpo_unsynced"),
        *paper_data_overrides,
        "trainer.total_training_steps=1",
        "trainer.test_freq=1",
        env={"VERL_USE_EXTERNAL_MODULES": "duet_verl.testing.no_weight_sync"},
    )
    record_wall_time("verl main_ppo GRPO, 1 step + validation, weight sync off, real reward path (CPU)", run.seconds)
    assert run.returncode == 0, run.output[-6000:]
    return run


def test_two_steps_complete_with_finite_losses_and_gradients(synced_run):
    assert sorted(synced_run.metrics) == [1, 2]
    for step, metrics in synced_run.metrics.items():
        for key in ("actor/pg_loss", "actor/kl_loss", "actor/loss", "actor/grad_norm"):
            assert math.isfinite(metrics[key]), (step, key, metrics[key])
        assert metrics["actor/grad_norm"] > 0, f"step {step}: zero gradient"
        assert metrics["critic/advantages/max"] > 0, f"step {step}: GRPO advantages all zero"
    assert synced_run.metrics[2]["actor/kl_loss"] > 0, "the actor moved after step 1, so KL to the reference must too"


def test_reference_model_and_validation_ran(synced_run):
    last = synced_run.metrics[2]
    assert "timing_s/ref" in last and "actor/kl_loss" in last
    assert any(key.startswith("val-core/tiny_math/") for key in last), sorted(last)
    assert "Final validation metrics" in synced_run.output


def test_weight_sync_aligns_rollout_with_actor(synced_run, unsynced_run):
    """Mean |log-prob(rollout) - log-prob(actor)| per sequence: numerics with sync, a real gap without."""
    gap = "rollout_corr/log_ppl_abs_diff"
    synced = [synced_run.metrics[step][gap] for step in (1, 2)]
    unsynced = unsynced_run.metrics[1][gap]
    print(f"rollout-vs-actor log-prob gap: synced {synced}, sync off {unsynced:.3g}")
    assert max(synced) < 1e-3
    assert unsynced > 1e-3


def test_the_baseline_reward_path_scores_prepared_rows(unsynced_run):
    """The GPU baseline's reward setup (DuetRewardManager, no custom function) on data_prep's data sources."""
    validated = {key.split("/")[1] for key in unsynced_run.metrics[1] if key.startswith("val-core/")}
    assert validated == {"math500", "gpqa_diamond"}


def test_m_alone_trains_at_the_adaptive_lambda(tiny_assets, tmp_path, record_wall_time):
    """Two steps with ``duet_verl.experiments.adaptive_penalty``'s trainer: both penalised, λ moved by DUET's rule. The
    recipe's shaped demo reward lies in [0, 1], so only the penalty makes a score negative."""
    run = run_recipe(
        tiny_assets["tokenizer"].parent, tmp_path, "trainer.use_v1=false",
        "+adaptive_penalty.length_bound=1", "+adaptive_penalty.eta=1",
        env={"ENTRY": "duet_verl.experiments.adaptive_penalty"},
    )  # fmt: skip
    record_wall_time("M alone at the adaptive λ, main_ppo, 2 steps + validation (CPU)", run.seconds)
    assert run.returncode == 0, run.output[-6000:]
    lambdas = {step: values[LAMBDA_METRIC] for step, values in run.metrics.items() if LAMBDA_METRIC in values}
    assert sorted(lambdas) == [1, 2], "every training step is penalised, validation is not"
    assert lambdas[1] == 0.0
    assert lambdas[2] == pytest.approx(min(1.0, max(0.0, run.metrics[1]["response_length/mean"] - 1.0)), abs=1e-6)
    assert lambdas[2] > 0 and run.metrics[1]["critic/score/min"] >= 0
    assert run.metrics[2]["critic/score/min"] < 0, "step 2's scores did not pay λ · L / B"
