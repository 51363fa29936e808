"""The DUET config: composition from verl's groups, per-model views, and validation before any worker starts."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from duet_verl.train.config_checks import validate, validate_views
from duet_verl.train.duet_config import DuetConfig, DuetConfigError, markdown_table, yaml_section
from duet_verl.train.model_views import build_model_views, optimizer_steps_per_training_step

BASE = [
    "data.max_prompt_length=64",
    "data.max_response_length=32",
    "data.train_batch_size=4",
    "actor_rollout_ref.model.path=/models/large",
    "actor_rollout_ref.rollout.name=hf",
    "actor_rollout_ref.rollout.n=2",
    "actor_rollout_ref.actor.ppo_mini_batch_size=2",
    "small_actor_rollout_ref.model.path=/models/small",
    "small_actor_rollout_ref.actor.ppo_mini_batch_size=2",
    "trainer.n_gpus_per_node=2",
    "duet.small_rollouts_per_signal=3",
]


def compose_duet(*overrides: str):
    with initialize_config_module(config_module="duet_verl.config", version_base=None):
        return compose(config_name="duet_trainer", overrides=[*BASE, *overrides])


def test_each_model_gets_its_own_resolved_view():
    config = compose_duet("small_actor_rollout_ref.actor.optim.lr=3e-6", "actor_rollout_ref.actor.optim.lr=1e-6")
    duet = DuetConfig.from_config(config)
    views = build_model_views(config, duet)
    large, small = views["large"].actor_rollout_ref, views["small"].actor_rollout_ref
    assert (large.model.path, small.model.path) == ("/models/large", "/models/small")
    assert (large.actor.optim.lr, small.actor.optim.lr) == (1e-6, 3e-6)
    # verl's absolute interpolations resolve inside each model's own block
    assert large.actor.rollout_n == 2 and small.actor.rollout_n == 2 * 3
    assert small.rollout.prompt_length == duet.small_prompt_length == 64 + 32
    assert (large.rollout.custom.server_tag, small.rollout.custom.server_tag) == ("large", "small")
    assert small.rollout.name == "hf", "m inherits M's rollout backend when it sets none"
    assert views["large"].algorithm.use_kl_in_reward and not views["small"].algorithm.use_kl_in_reward
    assert "small_actor_rollout_ref" not in views["large"] and "small_actor_rollout_ref" not in views["small"]


@pytest.mark.parametrize(
    ("override", "named_key"),
    [
        ("duet.small_prompt_template=translator", "duet.small_prompt_template"),
        ("duet.marginal_utility=sometimes", "duet.marginal_utility"),
        ("duet.small_prompt_length=50", "duet.small_prompt_length"),
        ("data.train_batch_size=3", "data.train_batch_size"),
        ("small_actor_rollout_ref.actor.ppo_mini_batch_size=3", "small_actor_rollout_ref.actor.ppo_mini_batch_size"),
        ("duet.length_bound=0", "duet.length_bound"),
        ("duet.lambda_clip_max=-1", "duet.lambda_clip_min"),
        ("small_actor_rollout_ref.model.path=null", "small_actor_rollout_ref.model.path"),
        ("actor_rollout_ref.rollout.checkpoint_engine.backend=nccl", "actor_rollout_ref.rollout.checkpoint_engine"),
        ("small_actor_rollout_ref.rollout.checkpoint_engine.backend=nixl", "small_actor_rollout_ref.rollout.check"),
        ("actor_rollout_ref.actor.strategy=megatron", "actor_rollout_ref.actor.strategy='megatron'"),
        ("small_actor_rollout_ref.ref.strategy=megatron", "small_actor_rollout_ref.ref.strategy"),
        ("small_actor_rollout_ref.model.lora_rank=8", "small_actor_rollout_ref.model.lora.merge=False"),
        ("global_profiler.steps=[2]", "global_profiler.steps"),
        # verl keys DUET's step does not read: refused, not silently ignored
        ("algorithm.rollout_correction.rollout_is=token", "algorithm.rollout_correction"),
        ("algorithm.filter_groups.enable=True", "algorithm.filter_groups.enable=True"),
        ("+data.gen_batch_size=8", "data.gen_batch_size=8"),
        ("small_actor_rollout_ref.rollout.n=3", "small_actor_rollout_ref.rollout.n=3"),
        # a rollout replica larger than the GPUs (verl would assert minutes after Ray starts)
        ("actor_rollout_ref.rollout.tensor_model_parallel_size=4", "actor_rollout_ref.rollout.tensor_model_parallel"),
        ("small_actor_rollout_ref.rollout.tensor_model_parallel_size=3", "small_actor_rollout_ref.rollout.tensor"),
    ],
)
def test_invalid_combinations_fail_naming_the_key(override, named_key):
    config = compose_duet(override)
    with pytest.raises(DuetConfigError, match=named_key.replace(".", r"\.")):
        validate(config, DuetConfig.from_config(config))


def compose_bare(*overrides: str):
    """The DUET config with only ``overrides``, as a user who passes nothing else gets it."""
    with initialize_config_module(config_module="duet_verl.config", version_base=None):
        return compose(config_name="duet_trainer", overrides=list(overrides))


def test_verls_placeholder_model_path_is_not_a_model():
    """verl fills a missing model path with its placeholder (~/models/deepseek-llm-7b-chat): for M or m, the start-up
    check names the key instead of letting the workers fail minutes later."""
    config = compose_bare(*[o for o in BASE if "model.path" not in o])
    with pytest.raises(DuetConfigError) as error:
        validate(config, DuetConfig.from_config(config))
    for block in ("actor_rollout_ref", "small_actor_rollout_ref"):
        assert f"{block}.model.path is not set" in str(error.value)
    assert "deepseek-llm-7b-chat" in str(error.value)


def test_keys_verl_leaves_unset_are_named():
    config = compose_bare()
    with pytest.raises(DuetConfigError, match=r"actor_rollout_ref\.rollout\.name not set") as error:
        validate(config, DuetConfig.from_config(config))
    assert "reward.reward_model" not in str(error.value) and "small_actor_rollout_ref" not in str(error.value)


def test_missing_model_folders_and_data_files_are_named(tmp_path):
    from duet_verl.train.config_checks import missing_inputs

    (tmp_path / "m").mkdir()
    config = compose_duet(
        f"small_actor_rollout_ref.model.path={tmp_path / 'm'}",
        f"data.train_files={tmp_path / 'train.parquet'}",
        "actor_rollout_ref.model.path=Qwen/Qwen3-8B",
    )
    missing = missing_inputs(config)
    assert len(missing) == 2, missing  # the hub id and m's folder are fine
    assert missing[0].startswith(f"data.train_files: {tmp_path / 'train.parquet'} does not exist")
    assert missing[1].startswith("data.val_files: ")


def test_the_entry_point_with_no_arguments_says_what_to_set_in_one_line(tmp_path):
    """``python -m duet_verl.main`` with nothing: one error naming the keys, exit 2, no traceback; DUET_DEBUG=1
    shows it."""
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "duet_verl.main"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120, env={**os.environ, "DUET_DEBUG": "0"})  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: invalid DUET config: actor_rollout_ref.rollout.name not set")
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 2, run.stderr
    debug = subprocess.run([sys.executable, "-m", "duet_verl.main"], capture_output=True, text=True, cwd=tmp_path,
                           timeout=120, env={**os.environ, "DUET_DEBUG": "1", "HYDRA_FULL_ERROR": "1"})  # fmt: skip
    assert "Traceback" in debug.stderr and "DuetConfigError" in debug.stderr


def test_a_profiled_run_validates_once_m_workers_profile():
    config = compose_duet("global_profiler.steps=[2]", "global_profiler.tool=torch",
                          "actor_rollout_ref.actor.profiler.enable=True")  # fmt: skip
    validate(config, DuetConfig.from_config(config))
    config = compose_duet("global_profiler.steps=[2]", "global_profiler.tool=nsys",
                          "actor_rollout_ref.actor.profiler.enable=True",
                          "global_profiler.global_tool_config.nsys.worker_nsight_options=null")  # fmt: skip
    with pytest.raises(DuetConfigError, match="worker_nsight_options"):
        validate(config, DuetConfig.from_config(config))


def test_unknown_duet_key_is_rejected():
    config = compose_duet("+duet.m_flag=true")
    with pytest.raises(DuetConfigError, match="m_flag"):
        DuetConfig.from_config(config)


MICRO_BATCHES = [
    f"{block}.{part}.{key}=2"
    for block in ("actor_rollout_ref", "small_actor_rollout_ref")
    for part, key in (("actor", "ppo_micro_batch_size_per_gpu"), ("rollout", "log_prob_micro_batch_size_per_gpu"))
] + ["actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2"]


def test_valid_config_passes():
    config = compose_duet(*MICRO_BATCHES)
    duet = DuetConfig.from_config(config)
    validate(config, duet)
    validate_views(build_model_views(config, duet))


@pytest.mark.parametrize(
    ("override", "model", "block"),
    [
        ("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=null", "large", "actor_rollout_ref"),
        ("+small_actor_rollout_ref.rollout.log_prob_micro_batch_size=4", "small", "small_actor_rollout_ref"),
        ("small_actor_rollout_ref.actor.ppo_mini_batch_size=8", "small", "small_actor_rollout_ref"),
    ],
)
def test_verl_validates_each_models_view(override, model, block):
    """verl's validate_config runs on each model's view; its complaint names the model and the block to fix."""
    config = compose_duet(*MICRO_BATCHES, override)
    with pytest.raises(DuetConfigError, match=rf"rejects {model}'s settings \({block};"):
        validate_views(build_model_views(config, DuetConfig.from_config(config)))


VLLM_BOTH = [
    "actor_rollout_ref.rollout.name=vllm",
    "actor_rollout_ref.rollout.gpu_memory_utilization=0.55",
    "small_actor_rollout_ref.rollout.gpu_memory_utilization=0.5",
]


@pytest.mark.parametrize(
    "resident",
    [
        "actor_rollout_ref.rollout.free_cache_engine=False",
        "small_actor_rollout_ref.rollout.free_cache_engine=False",
        "+small_actor_rollout_ref.rollout.enable_sleep_mode=False",
    ],
)
def test_engines_over_one_gpu_must_both_sleep(resident):
    sleeping = compose_duet(*VLLM_BOTH)
    validate(sleeping, DuetConfig.from_config(sleeping))  # 0.55 + 0.5 > 1 is fine while only one is awake
    config = compose_duet(*VLLM_BOTH, resident)
    with pytest.raises(DuetConfigError, match="gpu_memory_utilization sum to 1.05"):
        validate(config, DuetConfig.from_config(config))
    fits = compose_duet(*VLLM_BOTH, resident, "small_actor_rollout_ref.rollout.gpu_memory_utilization=0.3")
    validate(fits, DuetConfig.from_config(fits))


def test_optimizer_steps_count_questions_per_mini_batch():
    config = compose_duet(
        "data.train_batch_size=8",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "small_actor_rollout_ref.actor.ppo_mini_batch_size=1",
        "small_actor_rollout_ref.actor.ppo_epochs=2",
    )
    assert optimizer_steps_per_training_step(config) == {"large": 2, "small": 16}


ROOT = Path(__file__).resolve().parents[2]


def test_yaml_section_is_rendered_from_duet_config():
    yaml_text = (ROOT / "duet_verl" / "config" / "duet_trainer.yaml").read_text()
    section = yaml_section()
    assert yaml_text.endswith(section), (
        "duet_trainer.yaml's duet: section differs from DuetConfig; replace it with "
        "`python -m duet_verl.train.duet_config`"
    )
    loaded = OmegaConf.load(ROOT / "duet_verl" / "config" / "duet_trainer.yaml").duet
    assert {key.name: key.default for key in fields(DuetConfig)} == dict(loaded)


def test_docs_table_is_rendered_from_duet_config():
    assert markdown_table() in (ROOT / "docs" / "training.md").read_text(), (
        "docs/training.md's duet.* table differs from DuetConfig; replace it with "
        "`python -m duet_verl.train.duet_config markdown`"
    )


def test_every_key_says_what_it_means():
    for key in fields(DuetConfig):
        assert len(key.metadata["meaning"]) > 20, key.name


def test_verls_process_setup_is_kept(monkeypatch):
    """What verl's run_ppo sets before Ray starts, the driver sets too: full determinism for either model's rollout
    (carried to every worker by verl's runtime env), rl_insight, and nsys's controller options for the task runner."""
    from duet_verl.train.main import _process_setup, _profiler_options

    names = ("VERL_FULL_DETERMINISM", "VLLM_BATCH_INVARIANT", "PYTHONHASHSEED", "VERL_RL_INSIGHT_ENABLE")
    # a copy of the environment, so nothing set here reaches the processes later tests start (monkeypatch.delenv
    # does not undo a variable that was absent and then set: rl_insight leaked into every later verl run)
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k not in names})
    _process_setup(compose_duet())
    assert "VERL_FULL_DETERMINISM" not in os.environ
    _process_setup(compose_duet("small_actor_rollout_ref.rollout.full_determinism=True",
                                "trainer.logger=[console,rl_insight]"))  # fmt: skip
    assert os.environ["VERL_FULL_DETERMINISM"] == os.environ["VLLM_BATCH_INVARIANT"] == "1"
    assert os.environ["VERL_RL_INSIGHT_ENABLE"] == "1" and os.environ["PYTHONHASHSEED"].isdigit()
    assert _profiler_options(compose_duet()) == {}
    nsys = _profiler_options(compose_duet("global_profiler.tool=nsys", "global_profiler.steps=[1]"))
    assert "nsight" in nsys["runtime_env"]
