"""Every hydra override a recipe passes composes against its trainer's config (nothing is launched).

``DRY_RUN=1 bash recipes/X.sh`` prints the recipe's overrides one per line; they are composed with hydra against
the DUET config (``duet_verl.main``) or verl's ``ppo_trainer`` (``verl.trainer.main_ppo``). A run fails on an
unknown key (hydra's struct mode), a ``+key`` outside the allowed additions, a legacy key verl 0.9 silently
ignores, or an invalid DUET combination (``config_checks.validate``).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from duet_verl.cpu.overrides import CpuRun, duet_tiny, grpo_tiny
from duet_verl.train.config_checks import validate
from duet_verl.train.duet_config import LARGE, SMALL, DuetConfig, DuetConfigError
from duet_verl.train.model_views import build_model_views, optimizer_steps_per_training_step

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
DUET = ("duet_verl.config", "duet_trainer")
PPO = ("verl.trainer.config", "ppo_trainer")
RECIPE_CONFIGS = {
    "run_duet_qwen3.sh": DUET,
    "run_duet_qwen3_4b.sh": DUET,
    "run_grpo_baseline_qwen3.sh": PPO,
    "run_duet_cpu_tiny.sh": DUET,
    "run_grpo_cpu_tiny.sh": PPO,
}
# Keys a recipe may add with "+": absent from verl's schema but read by verl (each with its reason in
# duet_verl/cpu/overrides.py).
ALLOWED_ADDITIONS = {
    "ray_kwargs.ray_init.num_gpus",
    "ray_kwargs.ray_init.include_dashboard",
    "actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype",
    "actor_rollout_ref.ref.fsdp_config.mixed_precision.param_dtype",
    "actor_rollout_ref.model.override_config.attn_implementation",
    "small_actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype",
    "small_actor_rollout_ref.model.override_config.attn_implementation",
    # CPU_ROLLOUT=vllm: a RolloutConfig field verl's rollout yaml does not list
    "actor_rollout_ref.rollout.enable_sleep_mode",
    "small_actor_rollout_ref.rollout.enable_sleep_mode",
}
# Accepted by verl 0.9 and silently ignored: reward settings live under reward.* now (verl 0.9 reads them only there).
LEGACY_PREFIXES = ("reward_model.reward_manager", "reward_model.overlong_buffer", "custom_reward_function")
# In verl's schema but never read by the agent loop that generates (verl 0.9.1 reads val_kwargs' temperature, top_p
# and top_k: verl.experimental.agent_loop.agent_loop); setting one does nothing. tests/test_verl_guard.py checks it.
IGNORED_SUFFIXES = ("rollout.val_kwargs.do_sample",)


def dry_run(recipe: str, *args: str, **env: str) -> list[str]:
    return list(_dry_run(recipe, args, tuple(sorted(env.items()))))


@functools.cache
def _dry_run(recipe: str, args: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    result = subprocess.run(
        ["bash", str(RECIPES / recipe), *args],
        env={**os.environ, "DRY_RUN": "1", "RAY_ADDRESS": "", **dict(env)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return tuple(result.stdout.splitlines())


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


@functools.cache
def compose_config(config_source: tuple[str, str], overrides: tuple[str, ...]):
    module, name = config_source
    with initialize_config_module(config_module=module, version_base=None):
        return compose(config_name=name, overrides=list(overrides))


def check_overrides(overrides: list[str], config_source: tuple[str, str]):
    """Compose the overrides and run every check; returns the composed config."""
    assert overrides, "the recipe printed no overrides"
    for override in overrides:
        key = key_of(override)
        assert "=" in override and " " not in key, f"not a hydra override: {override!r}"
        assert not key.startswith(LEGACY_PREFIXES), f"{key} is a legacy key that verl 0.9 silently ignores"
        assert not key.endswith(IGNORED_SUFFIXES), f"{key} is a key verl 0.9.1 never reads: set what it reads"
        if override.startswith("+"):
            assert key in ALLOWED_ADDITIONS, f"{override!r} adds a key verl's schema does not have"
    config = compose_config(config_source, tuple(overrides))
    default = compose_config(config_source, ())
    for prefix in LEGACY_PREFIXES:
        node = OmegaConf.select(config, prefix)
        assert node == OmegaConf.select(default, prefix), f"{prefix} differs from its default: verl 0.9 ignores it"
    config = config.copy()  # the cache's copy stays untouched
    OmegaConf.to_container(config, resolve=True)  # every interpolation resolves
    # verl's own checks (batch sizes vs GPUs, micro-batch settings), as main_ppo runs them before Ray starts
    from verl.utils.config import validate_config

    if config_source == DUET:
        duet = DuetConfig.from_config(config)
        validate(config, duet)
        views = build_model_views(config, duet)
        validate_config(views[LARGE], use_reference_policy=True, use_critic=False)
        validate_config(views[SMALL], use_reference_policy=False, use_critic=False)
    else:
        kl = config.algorithm.use_kl_in_reward or config.actor_rollout_ref.actor.use_kl_loss
        validate_config(config, use_reference_policy=kl, use_critic=False)
    return config


@pytest.fixture(scope="module")
def printed() -> dict[str, list[str]]:
    return {recipe: dry_run(recipe) for recipe in RECIPE_CONFIGS}


@pytest.mark.parametrize("recipe", sorted(RECIPE_CONFIGS))
def test_recipe_overrides_compose_and_validate(recipe, printed):
    overrides = printed[recipe]
    assert len({key_of(o) for o in overrides}) == len(overrides), "a key is set twice"
    check_overrides(overrides, RECIPE_CONFIGS[recipe])


@pytest.mark.parametrize("recipe", ["run_duet_cpu_tiny.sh", "run_grpo_cpu_tiny.sh"])
def test_cpu_recipes_on_vllm_compose_and_validate(recipe):
    overrides = dry_run(recipe, CPU_ROLLOUT="vllm")
    assert len({key_of(o) for o in overrides}) == len(overrides), "a key is set twice"
    config = check_overrides(overrides, RECIPE_CONFIGS[recipe])
    blocks = (
        ["actor_rollout_ref", "small_actor_rollout_ref"] if RECIPE_CONFIGS[recipe] == DUET else ["actor_rollout_ref"]
    )
    for block in blocks:
        rollout = config[block].rollout
        assert (rollout.name, rollout.dtype, rollout.enable_sleep_mode, rollout.enforce_eager) == (
            "vllm", "float32", False, True
        )  # fmt: skip


def test_cpu_rollout_must_be_hf_or_vllm():
    result = subprocess.run(
        ["bash", str(RECIPES / "run_duet_cpu_tiny.sh")], env={**os.environ, "DRY_RUN": "1", "CPU_ROLLOUT": "sglang"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2 and "CPU_ROLLOUT must be hf or vllm, got 'sglang'" in result.stderr


def test_duet_recipe_has_the_papers_settings(printed):
    config = check_overrides(printed["run_duet_qwen3.sh"], DUET)
    large, small, duet = config.actor_rollout_ref, config.small_actor_rollout_ref, config.duet
    assert (large.model.path, small.model.path) == ("Qwen/Qwen3-8B", "Qwen/Qwen3-0.6B")
    assert (large.actor.optim.lr, small.actor.optim.lr) == (1e-6, 1e-6)
    assert (large.rollout.n, duet.small_rollouts_per_signal) == (4, 4)
    assert (config.data.max_prompt_length, config.data.max_response_length) == (512, 8192)
    assert small.rollout.response_length == 1024
    assert (config.data.train_batch_size, large.actor.ppo_mini_batch_size, small.actor.ppo_mini_batch_size) == (
        64,
        32,
        8,
    )
    # the authors' optimizer steps per step: M 256 responses / 128, m 1,024 answers / (32 M responses x 4 answers)
    assert optimizer_steps_per_training_step(config) == {"large": 2, "small": 8}
    assert config.algorithm.use_kl_in_reward and config.algorithm.kl_ctrl.kl_coef == 0.001
    assert (config.trainer.total_epochs, config.trainer.test_freq, config.trainer.save_freq) == (3, 10, 50)
    assert (duet.length_bound, duet.lambda_schedule, duet.lambda_init, duet.lambda_eta) == (1000, "adaptive", 0, 0.01)
    assert (duet.marginal_utility, duet.small_prompt_template) == ("per_signal", "paper")
    assert large.rollout.temperature == small.rollout.temperature == 1.0
    val = large.rollout.val_kwargs
    assert (val.temperature, val.top_p, val.top_k) == (0.6, 0.95, 20)
    assert small.rollout.val_kwargs.temperature == 0, "m answers greedily in validation"
    assert duet.val_small_question == "as_prompted", "m reads the question with its instruction, as the authors' m"
    assert config.trainer.max_actor_ckpt_to_keep == 2
    assert [Path(f).parent.name for f in config.data.val_files] == ["math500", "aime24"]
    assert Path(config.data.train_files).parent.name == "deepscaler"
    assert (config.trainer.nnodes, config.trainer.n_gpus_per_node, config.trainer.resume_mode) == (1, 8, "auto")


LOGPROB_TOKENS = (512 + 8192 + 1024) * 2  # two of m's longest sequences per log-prob micro-batch
QWEN3_VOCAB = 151_936


def test_gpu_recipes_run_fsdp2_with_bounded_log_prob_batches(printed):
    config = check_overrides(printed["run_duet_qwen3.sh"], DUET)
    duet = DuetConfig.from_config(config)
    views = build_model_views(config, duet)
    for view in views.values():
        block = view.actor_rollout_ref
        assert block.actor.strategy == "fsdp2"
        assert block.actor.fsdp_config.entropy_from_logits_with_chunking is True
        assert block.rollout.log_prob_max_token_len_per_gpu == LOGPROB_TOKENS
    large, small = views[LARGE].actor_rollout_ref, views[SMALL].actor_rollout_ref
    assert large.ref.strategy == "fsdp2" and large.ref.log_prob_max_token_len_per_gpu == LOGPROB_TOKENS
    assert LOGPROB_TOKENS >= config.data.max_prompt_length + config.data.max_response_length
    assert LOGPROB_TOKENS >= duet.small_prompt_length + small.rollout.response_length  # verl asserts it fits
    assert LOGPROB_TOKENS * QWEN3_VOCAB * 2 <= 8e9, "bf16 logits of one log-prob micro-batch within a few GB"
    assert not [o for o in printed["run_duet_qwen3.sh"] if key_of(o).endswith("ref.fsdp_config.param_offload")]
    base = check_overrides(printed["run_grpo_baseline_qwen3.sh"], PPO).actor_rollout_ref
    assert base.actor.strategy == base.ref.strategy == "fsdp2"
    assert base.actor.fsdp_config.entropy_from_logits_with_chunking is True


def test_baseline_matches_duets_large_model(printed):
    base = check_overrides(printed["run_grpo_baseline_qwen3.sh"], PPO)
    duet = check_overrides(printed["run_duet_qwen3.sh"], DUET)
    for key in ("data", "actor_rollout_ref.actor.optim", "actor_rollout_ref.rollout.val_kwargs", "algorithm.kl_ctrl"):
        assert OmegaConf.select(base, key) == OmegaConf.select(duet, key), key
    assert base.actor_rollout_ref.model.path == "Qwen/Qwen3-8B" and base.actor_rollout_ref.rollout.n == 4
    assert base.reward.reward_manager.name == "DuetRewardManager"
    assert base.trainer.max_actor_ckpt_to_keep == duet.trainer.max_actor_ckpt_to_keep == 2, "checkpoints are bounded"


def test_4b_recipe_only_changes_the_large_model(printed):
    small, big = printed["run_duet_qwen3_4b.sh"], printed["run_duet_qwen3.sh"]
    changed = sorted(set(small) ^ set(big))
    assert {key_of(o) for o in changed} == {
        "actor_rollout_ref.model.path",
        "actor_rollout_ref.rollout.tensor_model_parallel_size",
        "trainer.experiment_name",
        "trainer.default_local_dir",
        "trainer.validation_data_dir",
    }
    assert "actor_rollout_ref.model.path=Qwen/Qwen3-4B" in small


def test_knobs_and_passthrough_overrides():
    overrides = dry_run(
        "run_duet_qwen3.sh",
        "trainer.total_training_steps=7",
        NNODES="2",
        GPUS_PER_NODE="8",
        MODEL_SMALL="/models/m",
        LAMBDA_SCHEDULE="constant",
        LAMBDA_INIT="1.0",
        DATA_ROOT="/data",
        VAL_DATA="aime25",
        LOGGER="[console,wandb]",
        ROLLOUT_DATA_DIR="/runs/m_answers",
    )
    config = check_overrides(overrides, DUET)
    assert overrides[-1] == "trainer.total_training_steps=7", "extra overrides come last, so they win"
    assert (config.trainer.nnodes, config.trainer.total_training_steps) == (2, 7)
    assert config.small_actor_rollout_ref.model.path == "/models/m"
    assert (config.duet.lambda_schedule, config.duet.lambda_init) == ("constant", 1.0)
    assert list(config.data.val_files) == ["/data/aime25/test.parquet"]
    assert list(config.trainer.logger) == ["console", "wandb"]
    assert config.trainer.rollout_data_dir == "/runs/m_answers"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("actor_rollout_ref.actor.optim.learning_rate=1e-6", ConfigCompositionException),  # unknown key
        ("+reward_model.reward_manager=naive", AssertionError),  # legacy, ignored by verl 0.9
        ("+custom_reward_function.path=x.py", AssertionError),
        ("+actor_rollout_ref.actor.my_flag=1", AssertionError),  # an addition verl would never read
        ("data.train_batch_size=48", DuetConfigError),  # 48 questions do not split into mini-batches of 32
        ("small_actor_rollout_ref.rollout.val_kwargs.do_sample=False", AssertionError),  # never read by verl 0.9.1
    ],
)
def test_the_check_catches_bad_overrides(extra, error):
    with pytest.raises(error):
        check_overrides([*dry_run("run_duet_qwen3.sh"), extra], DUET)


def fake_bin(tmp_path: Path) -> Path:
    """`python` and `ray` stand-ins that record their arguments, one call per line; `python -` (the launcher reading
    a submitted job's exit status) answers FAKE_DRIVER_STATUS. The CPU recipes' overrides come from the real Python
    (``python -m duet_verl.cpu.overrides``, not recorded)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    overrides = f'[ "$1 $2" = "-m duet_verl.cpu.overrides" ] && exec {sys.executable} "$@"\n'
    for tool in ("python", "ray"):
        (bin_dir / tool).write_text(f'#!/usr/bin/env bash\n{overrides if tool == "python" else ""}'
                                    f'echo "{tool} $*" >> "{tmp_path}/calls"\n'
                                    '[ "$1" = - ] && echo "${FAKE_DRIVER_STATUS:-0}"\nexit 0\n')  # fmt: skip
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def launch(tmp_path: Path, recipe: str, status: int = 0, **env: str) -> list[str]:
    env = {**os.environ, "PATH": f"{fake_bin(tmp_path)}:{os.environ['PATH']}", "DATA_ROOT": str(tmp_path / "d"), **env}
    env.pop("DRY_RUN", None)
    ran = subprocess.run(["bash", str(RECIPES / recipe)], env=env, timeout=30, capture_output=True, text=True)
    assert ran.returncode == status, ran.stdout + ran.stderr
    return (tmp_path / "calls").read_text().splitlines()


def test_missing_data_is_prepared_then_training_starts_locally(tmp_path):
    calls = launch(tmp_path, "run_duet_qwen3.sh", RAY_ADDRESS="")
    assert calls[0].startswith("python -m duet_verl.data_prep.prepare_all --only deepscaler,math500,aime24 ")
    assert f"--output-root {tmp_path / 'd'}" in calls[0]
    assert calls[1].startswith("python -m duet_verl.main data.train_files=")
    assert len(calls) == 2


def test_ray_address_submits_a_job_and_prepared_data_is_reused(tmp_path):
    for name, split in (("deepscaler", "train"), ("math500", "test"), ("aime24", "test")):
        (tmp_path / "d" / name).mkdir(parents=True)
        (tmp_path / "d" / name / f"{split}.parquet").touch()
    calls = launch(
        tmp_path, "run_grpo_baseline_qwen3.sh", RAY_ADDRESS="http://head:8265", NNODES="2", HF_HOME="/shared/hf"
    )
    assert len(calls) == 2, "no data preparation when the files exist"
    assert calls[0].startswith("ray job submit --address http://head:8265 --submission-id duet-")
    assert " -- python -m verl.trainer.main_ppo " in calls[0] and "trainer.nnodes=2" in calls[0]
    runtime_env = calls[0].split("--runtime-env-json ", 1)[1].split(" -- ", 1)[0]
    assert json.loads(runtime_env)["env_vars"]["HF_HOME"] == "/shared/hf"
    job_id = calls[0].split("--submission-id ", 1)[1].split()[0]
    assert calls[1] == f"python - http://head:8265 {job_id}", "then the driver's exit status is read"


@pytest.mark.parametrize("driver_status", [0, 75, 2])
def test_a_submitted_run_exits_with_its_drivers_status(tmp_path, driver_status):
    """Submitted, the recipe follows the job and exits as the driver did, as a local run would: 75 (stopped after a
    checkpoint) is what the SLURM script requeues on; ``ray job submit`` itself says 1 for any failure."""
    tiny = tmp_path / "tiny"
    (tiny / "data").mkdir(parents=True)
    (tiny / "data" / "train.parquet").touch()
    calls = launch(tmp_path, "run_duet_cpu_tiny.sh", driver_status, RAY_ADDRESS="http://head:8265",
                   RAY_SUBMISSION_ID="duet-9", TINY_DIR=str(tiny), FAKE_DRIVER_STATUS=str(driver_status))  # fmt: skip
    assert calls[-1] == "python - http://head:8265 duet-9"


@pytest.mark.parametrize("recipe", ["run_duet_cpu_tiny.sh", "run_grpo_cpu_tiny.sh"])
def test_cpu_recipes_submit_to_a_cluster_through_the_same_launcher(tmp_path, recipe):
    tiny = tmp_path / "tiny"
    (tiny / "data").mkdir(parents=True)
    (tiny / "data" / "train.parquet").touch()  # built already: nothing to run before the submission
    secret = 'a "quoted" \\ value\r\twith\ncontrol characters'
    calls = launch(
        tmp_path, recipe, RAY_ADDRESS="http://head:8265", NNODES="2", CPU_WORKERS="1", TINY_DIR=str(tiny),
        OUT_DIR=str(tmp_path / "out"),
        RAY_SUBMISSION_ID="duet-7", RAY_NO_WAIT="1", RAY_JOB_ENV="MY_TOKEN UNSET_NAME", MY_TOKEN=secret,
        **dict.fromkeys(("RAY_DEDUP_LOGS", "HYDRA_FULL_ERROR", "HF_HOME", "HF_HUB_OFFLINE", "UNSET_NAME"), ""),
    )  # fmt: skip
    assert len(calls) == 1
    assert calls[0].startswith("ray job submit --address http://head:8265 --submission-id duet-7 --runtime-env-json {")
    assert " --no-wait -- python -m " in calls[0]
    runtime_env, entrypoint = calls[0].split("--runtime-env-json ", 1)[1].split(" --no-wait ", 1)
    env_vars = json.loads(runtime_env)["env_vars"]
    assert env_vars == {
        "HYDRA_FULL_ERROR": "1", "VERL_PLATFORM": "cpu", "RAY_DEDUP_LOGS": "0", "TOKENIZERS_PARALLELISM": "false",
        "VERL_FILE_LOGGER_ROOT": str(tmp_path / "out"), "MY_TOKEN": secret,
    }  # fmt: skip
    overrides = entrypoint.split("-- python -m ", 1)[1].split()
    assert "trainer.nnodes=2" in overrides and "trainer.n_gpus_per_node=1" in overrides
    assert not [o for o in overrides if "ray_init" in o], "a job may not declare the cluster's resources"


def test_a_recipe_that_is_a_ray_jobs_entrypoint_runs_in_place(tmp_path):
    """KubeRay's RayJob (or `ray job submit -- bash recipes/...`) runs the recipe as the job: no second job."""
    job_config = json.dumps({"runtime_env": {}, "metadata": {}})
    calls = launch(
        tmp_path, "run_duet_qwen3.sh", RAY_ADDRESS="10.0.0.1:6379", RAY_JOB_CONFIG_JSON_ENV_VAR=job_config,
        DATA_ROOT=str(tmp_path / "d"),
    )  # fmt: skip
    assert [call.split()[:3] for call in calls] == [["python", "-m", "duet_verl.data_prep.prepare_all"],
                                                    ["python", "-m", "duet_verl.main"]]  # fmt: skip


@pytest.mark.parametrize(
    ("recipe", "knobs", "cpu", "shape"),
    [
        ("run_duet_cpu_tiny.sh", {}, CpuRun(), {"steps": 3, "n": 2, "k": 2, "batch": 2, "lr": "1e-4"}),
        (
            "run_duet_cpu_tiny.sh",
            {"CPU_ROLLOUT": "vllm", "CPU_WORKERS": "3", "NNODES": "2", "RAY_ADDRESS": "http://head:8265", "K": "5"},
            CpuRun(rollout="vllm", workers=3, nnodes=2, local_ray=False),
            {"steps": 3, "n": 2, "k": 5, "batch": 2, "lr": "1e-4"},
        ),
        (
            "run_grpo_cpu_tiny.sh",
            {"STEPS": "7", "BATCH": "3"},
            CpuRun(),
            {"steps": 7, "n": 2, "batch": 3, "lr": "1e-5"},
        ),
    ],
)
def test_a_cpu_recipe_launches_the_overrides_python_builds(tmp_path, recipe, knobs, cpu, shape):
    """The CPU recipes, the benchmarks and the main job launch one list (``duet_verl.cpu.overrides``)."""
    tiny, out = tmp_path / "tiny", tmp_path / "out"
    printed = dry_run(recipe, "trainer.seed=3", TINY_DIR=str(tiny), OUT_DIR=str(out), **knobs)
    cpu = CpuRun(cpu.rollout, cpu.workers, cpu.nnodes, cpu.local_ray, tiny)
    build = duet_tiny if "duet" in recipe else grpo_tiny
    assert printed == [*build(cpu, out_dir=out, **shape), "trainer.seed=3"]


def test_cpu_recipes_on_a_cluster_compose_and_validate():
    overrides = dry_run("run_duet_cpu_tiny.sh", RAY_ADDRESS="http://head:8265", NNODES="2", CPU_WORKERS="1")
    config = check_overrides(overrides, DUET)
    assert (config.trainer.nnodes, config.trainer.n_gpus_per_node) == (2, 1)
    assert "num_gpus" not in config.ray_kwargs.ray_init and config.ray_kwargs.ray_init.num_cpus is None


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.sh")))
def test_recipes_parse(recipe):
    subprocess.run(["bash", "-n", str(RECIPES / recipe)], check=True)


@pytest.mark.parametrize("recipe", ["run_duet_qwen3.sh", "run_grpo_baseline_qwen3.sh"])
def test_lora_for_m_composes_and_validates(recipe):
    """``LORA_RANK_LARGE``: M trains a merged rank-64 adapter on every linear layer; its reference is its base."""
    overrides = dry_run(recipe, LORA_RANK_LARGE="64")
    config = check_overrides(overrides, RECIPE_CONFIGS[recipe])
    model = config.actor_rollout_ref.model
    assert (model.lora_rank, model.lora_alpha, model.target_modules, model.lora.merge) == (64, 128, "all-linear", True)
    assert not any(".lora" in o for o in dry_run(recipe)), "LoRA is off by default"


# docs/gpus.md, "Memory and time on 8×H100": M's engine beside what stays resident, per GPU, in GiB.
H100_GIB = 79.6
ENGINE_ACTIVATIONS_GIB = 3.0  # vLLM's profiling peak inside its fraction
RESIDENT_BESIDE_M_ENGINE_GIB = {
    "training worker's CUDA context": 0.6,
    "m's actor (0.6B x 16 B / 8)": 1.1,
    "NCCL communicators": 1.0,
    "sleeping m engine's context and CUDA graphs": 1.5,
    "M engine's own context and CUDA graphs": 1.5,
    "allocator slack after M's offload": 1.0,
}
QWEN3_8B = {"params": 8.2e9, "layers": 36, "kv_heads": 8, "head_dim": 128}


def test_the_large_engine_holds_a_steps_batch_and_leaves_headroom(printed):
    """GPU_MEM_LARGE must leave twice the estimated resident memory free beside M's engine (an estimate off by its
    own size must not be an out-of-memory at the first step), and its KV cache must hold a step's M batch."""
    config = check_overrides(printed["run_duet_qwen3.sh"], DUET)
    rollout = config.actor_rollout_ref.rollout
    fraction, tp = rollout.gpu_memory_utilization, rollout.tensor_model_parallel_size
    gib = 2**30
    weights = QWEN3_8B["params"] * 2 / tp / gib
    kv_per_token = QWEN3_8B["layers"] * QWEN3_8B["kv_heads"] * QWEN3_8B["head_dim"] * 2 * 2 / tp
    replicas = config.trainer.n_gpus_per_node * config.trainer.nnodes // tp
    sequences = config.data.train_batch_size * rollout.n / replicas
    kv_needed = sequences * (config.data.max_prompt_length + config.data.max_response_length) * kv_per_token / gib
    kv_available = fraction * H100_GIB - weights - ENGINE_ACTIVATIONS_GIB
    assert kv_available >= 1.2 * kv_needed, (kv_available, kv_needed)
    resident = sum(RESIDENT_BESIDE_M_ENGINE_GIB.values())
    free = (1 - fraction) * H100_GIB - resident
    assert free >= resident, f"GPU_MEM_LARGE={fraction} leaves {free:.1f} GiB beside ~{resident:.1f} GiB resident"
