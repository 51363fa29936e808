"""The GPU recipes themselves on CPU, in their GPU shape, with the hf rollout (docs/gpus.md, "What has run, and where").

``bash recipes/run_duet_qwen3.sh`` runs with every override it makes, plus the substitutions of
``duet_verl.testing.gpu_shape`` (the one list; docs/gpus.md renders it): 2 steps with validation before training
and at step 2, a checkpoint each step with retention 1, then the same command resumed for a third step. Its
validation batch and m's rows split unevenly over 3 agent-loop workers per model (verl asserts even chunks: the
crash the paper recipe would have met at its first validation). The GRPO baseline recipe runs 2 steps in the same
shape. ``tests/vllm/test_vllm_gpu_shape.py`` runs the DUET recipe on vLLM's CPU build.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from duet_verl.testing import gpu_shape
from duet_verl.testing.gpu_shape import check_duet_runs, run_duet_twice, run_recipe

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def duet_runs(gpu_shape_places, tmp_path_factory, record_wall_time):
    out = tmp_path_factory.mktemp("gpu_shape_duet")
    start = time.perf_counter()
    first, resumed = run_duet_twice("hf", gpu_shape_places, out)
    record_wall_time("GPU recipe's shape, hf: DUET 2 steps + resume for a 3rd step, 4 validations (CPU)",
                     time.perf_counter() - start)  # fmt: skip
    return out, first, resumed


def test_the_duet_recipe_trains_validates_saves_and_resumes_in_its_gpu_shape(duet_runs, gpu_shape_places):
    check_duet_runs(*duet_runs, "hf", gpu_shape_places)


def test_the_grpo_baseline_recipe_runs_in_its_gpu_shape(gpu_shape_places, tmp_path, record_wall_time):
    start = time.perf_counter()
    output = run_recipe("run_grpo_baseline_qwen3.sh", "hf", gpu_shape_places, tmp_path, log="metrics.jsonl")
    record_wall_time("GPU recipe's shape, hf: GRPO baseline 2 steps + 2 validations (CPU)", time.perf_counter() - start)
    # DUET's M's trainer and KL placement: verl's RayPPOTrainer, KL to the reference in the reward (not the loss)
    from duet_verl.experiments.runs import read_metrics

    argv, env = gpu_shape.command("run_grpo_baseline_qwen3.sh", "hf", gpu_shape_places, tmp_path)
    assert gpu_shape.dry_run_overrides(argv, env)["trainer.use_v1"] == "False"
    step = read_metrics(tmp_path / "metrics.jsonl")[1]
    assert "actor/reward_kl_penalty" in step and not any(key.startswith("actor/kl_loss") for key in step), step
    # verl's retention deletes an old checkpoint's model and optimizer (actor/), leaving its dataloader state
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in (checkpoints / "global_step_1").iterdir()) == ["data.pt"]
    assert any((checkpoints / "global_step_2" / "actor").glob("optim_world_size_2_rank_*.pt"))
    assert "val-core/math500/" in output and "val-core/aime24/" in output


def test_the_evaluation_recipe_runs_in_its_gpu_shape(gpu_shape_places, tmp_path, record_wall_time):
    """The paper's five benchmarks and four modes, with the recipe's sampling settings (new tokens scaled down)."""
    start = time.perf_counter()
    run_recipe("eval_duet_qwen3.sh", "hf", gpu_shape_places, tmp_path)
    record_wall_time("GPU recipe's shape, hf: evaluation, 5 benchmarks x 4 modes (CPU)", time.perf_counter() - start)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sorted(summary) == ["aime24", "aime25", "amc23", "gpqa_diamond", "math500"]
    for benchmark, modes in summary.items():
        assert list(modes) == ["duet", "large", "small", "concise"], benchmark
        assert all(0 < mode["mean_small_tokens"] <= 16 or name in ("large", "concise") for name, mode in modes.items())
        assert 0 < modes["large"]["mean_large_tokens"] <= 32


def test_the_substitutions_are_documented():
    assert gpu_shape.markdown_table() in (ROOT / "docs" / "gpus.md").read_text(), (
        "docs/gpus.md's substitution table differs from duet_verl/testing/gpu_shape.py; replace it with "
        "`python -m duet_verl.testing.gpu_shape`"
    )


# What the substitutions' knobs feed in the recipe's printed overrides: sizes, paths and names, nothing else.
KNOB_FED_KEYS = {
    "data.train_files", "data.val_files", "data.train_batch_size", "data.max_prompt_length",
    "data.max_response_length", "actor_rollout_ref.model.path", "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu", "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu",
    "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu", "small_actor_rollout_ref.model.path",
    "small_actor_rollout_ref.actor.ppo_mini_batch_size", "small_actor_rollout_ref.actor.ppo_max_token_len_per_gpu",
    "small_actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu", "small_actor_rollout_ref.rollout.response_length",
    "duet.small_rollouts_per_signal", "duet.length_bound", "trainer.n_gpus_per_node", "trainer.test_freq",
    "trainer.save_freq", "trainer.max_actor_ckpt_to_keep", "trainer.experiment_name", "trainer.default_local_dir",
    "trainer.validation_data_dir",
}  # fmt: skip


def printed_overrides(env: dict[str, str]) -> dict[str, str]:
    """The paper recipe's overrides under ``env`` alone, with none of the substitutions' arguments."""
    recipe = ["bash", str(gpu_shape.RECIPES / "run_duet_qwen3.sh")]
    return gpu_shape.dry_run_overrides(recipe, {**env, "RAY_ADDRESS": ""})


@pytest.mark.parametrize("rollout", gpu_shape.ROLLOUTS)
def test_the_substitutions_knobs_change_only_sizes_paths_and_names(rollout):
    """Under the substitutions' knobs the recipe prints the same overrides as for GPUs, with other values only where
    a knob feeds them: nothing else of the GPU shape is lost by scaling it down (on vLLM, M's TP and the memory
    fractions aside)."""
    gpu = printed_overrides(dict(os.environ))
    cpu = printed_overrides({**os.environ, **gpu_shape.environment(rollout, {"<tiny>": "/t", "<prepared>": "/p"})})
    assert gpu.keys() == cpu.keys(), "the knobs must not add or drop a recipe override"
    changed = {key for key in gpu if gpu[key] != cpu[key]}
    vllm_only = {f"{block}.rollout.gpu_memory_utilization" for block in gpu_shape.MODEL_BLOCKS}
    vllm_only.add("actor_rollout_ref.rollout.tensor_model_parallel_size")
    expected = KNOB_FED_KEYS | (vllm_only if rollout == "vllm" else set())
    assert changed == expected, sorted(changed ^ expected)
