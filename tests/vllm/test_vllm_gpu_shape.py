"""The DUET GPU recipe itself on vLLM's CPU build, in its GPU shape (docs/gpus.md, "What has run, and where").

As ``tests/recipes/test_gpu_shape.py`` with the hf rollout: ``bash recipes/run_duet_qwen3.sh`` with the
substitutions of ``duet_verl.testing.gpu_shape`` for the ``vllm`` rollout, 2 steps with validation before training
and at step 2, a checkpoint each step with retention 1, then the same command resumed for a third step.
"""

from __future__ import annotations

import time

import pytest

from duet_verl.testing.gpu_shape import check_duet_runs, run_duet_twice

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_the_duet_recipe_trains_validates_saves_and_resumes_on_vllm(gpu_shape_places, tmp_path, record_wall_time):
    start = time.perf_counter()
    first, resumed = run_duet_twice("vllm", gpu_shape_places, tmp_path)
    record_wall_time("GPU recipe's shape, vLLM: DUET 2 steps + resume for a 3rd step, 4 validations (CPU)",
                     time.perf_counter() - start)  # fmt: skip
    check_duet_runs(tmp_path, first, resumed, "vllm", gpu_shape_places)
    assert "vllm_large_server_" in first and "vllm_small_server_" in first, "the engines are vLLM's"
