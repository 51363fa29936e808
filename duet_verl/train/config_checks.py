"""Start-up checks, run by the driver before Ray starts: DUET's own (what two models need) and verl's
``validate_config`` on each model's view. Every problem is named with its keys, all at once."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from duet_verl.cli import looks_local
from duet_verl.core import GROUPINGS, LENGTH_MEASURES, MARGINAL_UTILITY_MODES, SCHEDULES, SMALL_QUESTIONS
from duet_verl.train.checkpointing import DAMAGED_CHOICES
from duet_verl.train.duet_config import GUIDED_TEMPLATES, LARGE, SMALL, SMALL_BLOCK, DuetConfig, DuetConfigError
from duet_verl.train.model_views import uses_lora
from duet_verl.train.preemption import signal_problems

MODEL_ROLES = {"actor_rollout_ref": "M, the capable model", SMALL_BLOCK: "m, the small model"}
# verl's "???" keys a DUET run may leave unset: m's rollout takes M's backend (model_views), and the reward model
# verl's config carries is not used (m's answers are scored by rule)
UNSET_IS_FINE = (f"{SMALL_BLOCK}.rollout.name", "reward.reward_model.")


def verl_placeholder_model_path() -> str:
    """The model path verl's ``hf_model.yaml`` fills in when none is given (a model nobody meant to train)."""
    from importlib import resources

    yaml = resources.files("verl.trainer.config").joinpath("model", "hf_model.yaml")
    return OmegaConf.create(yaml.read_text()).path


def missing_inputs(config: DictConfig) -> list[str]:
    """Each model folder and data file the config names that this machine does not have (checked by the driver
    before Ray starts: on a cluster the driver runs on the head node, which mounts the shared filesystem)."""
    missing = []
    for block, role in MODEL_ROLES.items():
        path = str(config[block].model.path)
        if looks_local(path) and not Path(path).expanduser().is_dir():
            missing.append(f"{block}.model.path={path} ({role}): no such folder; pass a model folder or a hub id "
                           "(owner/name)")  # fmt: skip
    for key in ("data.train_files", "data.val_files"):
        files = OmegaConf.select(config, key)
        for file in [files] if isinstance(files, str) else list(files or []):
            if not Path(str(file)).expanduser().is_file():
                missing.append(f"{key}: {file} does not exist; prepare it with python -m duet_verl.data_prep.<name> "
                               "(docs/data_prep.md)")  # fmt: skip
    return missing


def _require(condition: bool, message: str, problems: list[str]) -> None:
    if not condition:
        problems.append(message)


def validate(config: DictConfig, duet: DuetConfig) -> None:
    """Fail fast, naming the keys, on combinations that would break hours into a run."""
    unset = sorted(key for key in OmegaConf.missing_keys(config) if not key.startswith(UNSET_IS_FINE))
    if unset:  # verl leaves these "???" for the user; nothing below can be checked without them
        raise DuetConfigError(
            f"invalid DUET config: {', '.join(unset)} not set: pass each as key=value (a recipe sets them all: "
            "bash recipes/run_duet_cpu_world.sh on CPU; docs/training.md)"
        )
    problems: list[str] = []
    choices = {
        "duet.lambda_schedule": (duet.lambda_schedule, SCHEDULES),
        "duet.marginal_utility": (duet.marginal_utility, MARGINAL_UTILITY_MODES),
        "duet.small_prompt_template": (duet.small_prompt_template, GUIDED_TEMPLATES),
        "duet.length_measure": (duet.length_measure, LENGTH_MEASURES),
        "duet.small_grouping": (duet.small_grouping, GROUPINGS),
        "duet.val_small_question": (duet.val_small_question, SMALL_QUESTIONS),
        "duet.damaged_checkpoint": (duet.damaged_checkpoint, DAMAGED_CHOICES),
    }
    for key, (value, allowed) in choices.items():
        _require(value in allowed, f"{key}={value!r} is not one of {list(allowed)}", problems)
    for problem in signal_problems(duet.stop_signals):
        problems.append(f"duet.stop_signals: {problem}")
    _require(duet.length_bound > 0, f"duet.length_bound={duet.length_bound} must be > 0", problems)
    _require(
        0.0 <= duet.lambda_clip_min <= duet.lambda_clip_max,
        f"duet.lambda_clip_min={duet.lambda_clip_min} / lambda_clip_max={duet.lambda_clip_max} must satisfy "
        "0 <= min <= max",
        problems,
    )
    _require(duet.small_rollouts_per_signal >= 1, "duet.small_rollouts_per_signal must be >= 1", problems)
    _require(duet.val_small_rollouts_per_signal >= 1, "duet.val_small_rollouts_per_signal must be >= 1", problems)
    large_needed = config.data.max_prompt_length + config.data.max_response_length
    _require(
        duet.small_prompt_length >= large_needed,
        f"duet.small_prompt_length={duet.small_prompt_length} is smaller than M's prompt + response "
        f"(data.max_prompt_length + data.max_response_length = {large_needed}): m could not see whole signals",
        problems,
    )
    _require(config.algorithm.adv_estimator == "grpo", "algorithm.adv_estimator must be grpo for DUET", problems)
    placeholder = verl_placeholder_model_path()
    for block, role in MODEL_ROLES.items():
        path = config[block].model.get("path")
        _require(
            path not in (None, "", placeholder),
            f"{block}.model.path is not set ({role}; verl fills in its placeholder {placeholder!r}): pass "
            f"{block}.model.path=<a model folder or hub id>",
            problems,
        )

    n = config.actor_rollout_ref.rollout.n
    batch = config.data.train_batch_size
    for block, rows_per_question in (("actor_rollout_ref", n), (SMALL_BLOCK, n * duet.small_rollouts_per_signal)):
        mini = config[block].actor.ppo_mini_batch_size
        _require(
            batch % mini == 0,
            f"data.train_batch_size={batch} must be divisible by {block}.actor.ppo_mini_batch_size={mini}",
            problems,
        )
        world = config.trainer.n_gpus_per_node * config.trainer.nnodes
        _require(
            (mini * rows_per_question) % world == 0,
            f"{block}.actor.ppo_mini_batch_size={mini} x {rows_per_question} rows per question must be divisible "
            f"by the number of GPUs (trainer.n_gpus_per_node x trainer.nnodes = {world})",
            problems,
        )
    large_rollout = config.actor_rollout_ref.rollout.name
    for block in ("actor_rollout_ref", SMALL_BLOCK):
        for part in ("actor", "ref"):
            strategy = config[block][part].strategy
            _require(
                strategy in ("fsdp", "fsdp2"),
                f"{block}.{part}.strategy={strategy!r}: DUET trains both models with FSDP (fsdp or fsdp2); "
                "Megatron is not supported (docs/gpus.md#megatron-and-other-engines says why)",
                problems,
            )
        model, rollout_name = config[block].model, config[block].rollout.get("name")
        _require(
            not uses_lora(model) or model.lora.get("merge", False) or (rollout_name or large_rollout) != "hf",
            f"{block}.model.lora.merge=False: the CPU hf rollout takes whole weights, not LoRA adapters; set "
            f"{block}.model.lora.merge=True (the adapter is merged into the weights it receives)",
            problems,
        )
    profiler = config.global_profiler
    _require(
        not profiler.get("steps")
        or profiler.get("tool") != "nsys"
        or OmegaConf.select(profiler, "global_tool_config.nsys.worker_nsight_options") is not None,
        "global_profiler.tool=nsys with global_profiler.steps: set global_profiler.global_tool_config.nsys."
        "worker_nsight_options (verl's nsys options for the worker processes)",
        problems,
    )
    _require(
        not profiler.get("steps") or config.actor_rollout_ref.actor.profiler.get("enable", False),
        f"global_profiler.steps={profiler.steps}: M's workers open the profiler window (it records both models, "
        "which share their processes); set actor_rollout_ref.actor.profiler.enable=True",
        problems,
    )
    _check_rollout_engines(config, problems)
    _check_what_duets_step_does_not_read(config, duet, problems)
    if problems:
        raise DuetConfigError("invalid DUET config:\n- " + "\n- ".join(problems))


def _check_what_duets_step_does_not_read(config: DictConfig, duet: DuetConfig, problems: list[str]) -> None:
    """verl keys that its own trainer reads and DUET's step does not: set, they would be silently ignored."""
    algorithm, data = config.algorithm, config.data
    correction = algorithm.get("rollout_correction") or {}
    _require(
        correction.get("rollout_is") is None and correction.get("rollout_rs") is None
        and not correction.get("bypass_mode", False),
        "algorithm.rollout_correction.*: DUET's step applies no rollout correction (importance weights or rejection "
        "sampling); leave rollout_is, rollout_rs null and bypass_mode false",
        problems,
    )  # fmt: skip
    _require(
        not (algorithm.get("filter_groups") or {}).get("enable", False),
        "algorithm.filter_groups.enable=True: DUET's step keeps every GRPO group (DAPO's dynamic sampling is not "
        "supported); set it to False",
        problems,
    )
    _require(
        not algorithm.get("use_pf_ppo", False),
        "algorithm.use_pf_ppo=True: DUET's step does not reweight its batches (PF-PPO); set it to False",
        problems,
    )
    gen = data.get("gen_batch_size")
    _require(
        gen is None or gen == data.train_batch_size,
        f"data.gen_batch_size={gen}: DUET generates for data.train_batch_size={data.train_batch_size} questions per "
        "step (DAPO's over-sampling is not supported); remove it",
        problems,
    )
    small_n, n, k = config[SMALL_BLOCK].rollout.n, config.actor_rollout_ref.rollout.n, duet.small_rollouts_per_signal
    _require(
        small_n in (1, n * k),
        f"{SMALL_BLOCK}.rollout.n={small_n}: DUET sets m's answers per question to actor_rollout_ref.rollout.n × "
        f"duet.small_rollouts_per_signal = {n} × {k}; set duet.small_rollouts_per_signal (m's answers per signal) "
        "instead",
        problems,
    )


def _check_rollout_engines(config: DictConfig, problems: list[str]) -> None:
    """What the fused worker group and two GPU rollout engines on the same GPUs require."""
    rollouts = {block: config[block].rollout for block in ("actor_rollout_ref", SMALL_BLOCK)}
    gpus, per_node = config.trainer.n_gpus_per_node * config.trainer.nnodes, config.trainer.n_gpus_per_node
    for block, rollout in rollouts.items():
        size = rollout.tensor_model_parallel_size * rollout.data_parallel_size * rollout.pipeline_model_parallel_size
        _require(
            gpus % size == 0 and (size <= per_node or size % per_node == 0),
            f"{block}.rollout.tensor_model_parallel_size={rollout.tensor_model_parallel_size} (× data_parallel_size "
            f"× pipeline_model_parallel_size = {size} GPUs per rollout replica) must divide the {gpus} GPUs "
            f"(trainer.n_gpus_per_node={per_node} × trainer.nnodes), whole nodes when larger than one",
            problems,
        )
    for block, rollout in rollouts.items():
        backend = rollout.checkpoint_engine.backend
        # nccl/nixl/hccl: one process-wide collective group name ("default"), so m would reuse M's group in the
        # fused worker, and their worker group calls unprefixed methods the fused actors do not expose.
        _require(
            backend == "naive",
            f"{block}.rollout.checkpoint_engine.backend={backend!r}: DUET's fused worker group supports only "
            "'naive' weight sync",
            problems,
        )
    large_name = rollouts["actor_rollout_ref"].name
    gpu_engines = {block: r for block, r in rollouts.items() if (r.get("name") or large_name) != "hf"}
    if len(gpu_engines) < 2:
        return
    total = sum(float(r.gpu_memory_utilization) for r in gpu_engines.values())
    resident = [
        f"{block}.rollout" for block, r in gpu_engines.items()
        if not (r.free_cache_engine and r.get("enable_sleep_mode", True))
    ]  # fmt: skip
    _require(
        total <= 1.0 or not resident,
        f"the two rollout engines' gpu_memory_utilization sum to {total:g} > 1, but {resident} never sleep "
        "(free_cache_engine / enable_sleep_mode off): both cannot be resident on one GPU. Lower the fractions or "
        "let both engines sleep",
        problems,
    )


def validate_views(views: dict[str, DictConfig]) -> None:
    """verl's own ``validate_config`` on each model's view, as ``main_ppo`` runs it on its one model (batch sizes
    against GPUs, micro-batch settings, LoRA ranks, sampling); :func:`validate` adds what two models need."""
    from verl.trainer.ppo.utils import need_reference_policy
    from verl.utils.config import validate_config

    for name, block in ((LARGE, "actor_rollout_ref"), (SMALL, SMALL_BLOCK)):
        view = views[name]
        try:
            validate_config(view, use_reference_policy=name == LARGE and need_reference_policy(view), use_critic=False)
        except (AssertionError, ValueError) as error:
            raise DuetConfigError(
                f"invalid DUET config: verl's validate_config rejects {name}'s settings ({block}; verl calls the "
                f"block actor_rollout_ref): {error}"
            ) from error
