"""The ``duet:`` config section as named fields, per-model views of the config, and start-up validation.

verl reads ``config.actor_rollout_ref`` everywhere (workers, agent loop, server manager, reward loop) and its
yaml interpolations are absolute (``${actor_rollout_ref.model.path}``). Each model therefore gets its own view
of the whole *unresolved* config whose ``actor_rollout_ref`` is that model's block, resolved afterwards, so
m's interpolations point at m's own keys.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import MISSING, dataclass, field, fields

from omegaconf import DictConfig, OmegaConf, open_dict

from duet_verl.core import (
    GROUPINGS,
    LENGTH_MEASURES,
    MARGINAL_UTILITY_MODES,
    SCHEDULES,
    SMALL_QUESTIONS,
    TEMPLATES,
    THINK_END,
    THINK_START,
)
from duet_verl.train.checkpointing import DAMAGED_CHOICES
from duet_verl.train.preemption import signal_problems

LARGE, SMALL = "large", "small"
SMALL_BLOCK = "small_actor_rollout_ref"
BASELINE_TEMPLATE = "baseline"
GUIDED_TEMPLATES = tuple(t for t in TEMPLATES if t != BASELINE_TEMPLATE)  # what duet.small_prompt_template may be


class DuetConfigError(ValueError):
    """An invalid DUET configuration, raised before any worker starts; the message names the keys."""


def _key(default, meaning: str, paper: str | None = None):
    """A ``duet.*`` key: its default, what it means, and the paper's value where the paper fixes one."""
    return field(default=default, metadata={"meaning": meaning, "paper": paper})


@dataclass(frozen=True)
class DuetConfig:
    """``config.duet`` with types. Each key is documented here and only here: the yaml's ``duet:`` section and the
    table in docs/training.md are rendered from these fields (``python -m duet_verl.train.duet_config [yaml|markdown]``)
    and tests/train/test_duet_config.py keeps them equal."""

    length_bound: float = _key(
        1000, "B: length bound in M tokens; the penalty is λ·L/B, linear in every token.", "1000"
    )
    lambda_schedule: str = _key(
        "adaptive",
        '"constant", or "adaptive": λ ← clip(λ + η (mean L / B − 1), clip_min, clip_max) after each step.',
        "adaptive",
    )
    lambda_init: float = _key(0.0, "λ0: the penalty weight of the first step.", "0.0 adaptive, 1.0 constant")
    lambda_eta: float = _key(0.01, "η: step size of the adaptive schedule.", "0.01")
    lambda_clip_min: float = _key(0.0, "Lower clip of λ under the adaptive schedule.")
    lambda_clip_max: float = _key(1.0, "Upper clip of λ under the adaptive schedule.")
    marginal_utility: str = _key(
        "per_signal",
        '"off" (R_M = r_Mm − penalty), "per_signal" (fresh baseline m answers for every M response, R_M −= r_m) '
        'or "per_prompt" (k baseline answers per question; under GRPO it trains exactly like "off").',
        "per_signal",
    )
    small_rollouts_per_signal: int = _key(
        4, "k: m answers sampled per signal; also the baseline answers per signal or question.", "4"
    )
    small_prompt_template: str = _key(
        "paper",
        '"paper" (the authors\' raw text, no special tokens) or "chat_think" (m\'s chat template with the signal '
        "as the assistant's thinking block).",
        "paper",
    )
    length_measure: str = _key(
        "response", 'Which M length the penalty counts: "response" (the whole response) or "thinking" (up to '
        "</think>).", "response",
    )  # fmt: skip
    think_start: str = _key(
        THINK_START,
        "M's start-of-thinking marker (Qwen3's); the signal is the text after it. A chat template may put it in "
        "the prompt, so M's response need not show it.",
    )
    think_end: str = _key(
        THINK_END,
        "M's end-of-thinking marker (Qwen3's); the signal ends before it and thinking lengths count up to it. "
        "Kept when M's responses are decoded even if it is a special token; one token of M's vocabulary for "
        'length_measure "thinking".',
    )
    small_grouping: str = _key(
        "question",
        'm\'s GRPO groups: "question" (all n·k answers of a question) or "signal" (the k answers of one signal).',
        "question",
    )
    train_small: bool = _key(True, "Train m (true) or keep it frozen (false: m only generates and scores).", "true")
    small_prompt_length: int | None = _key(
        None,
        "m's prompt budget in tokens (question + template + signal), also m's rollout.prompt_length; at least M's "
        "prompt + response length (data.max_prompt_length + data.max_response_length, the default when null). A "
        "signal that still does not fit is shortened from its start (the question never is).",
    )
    val_small_rollouts_per_signal: int = _key(1, "m answers per signal in validation (m answers greedily).", "1")
    val_small_question: str = _key(
        "bare",
        'The question m reads in validation: "bare" (extra_info.question, as in training) or "as_prompted" (M\'s '
        "user message, the dataset's answer instruction included: the authors' form for AIME, AMC and MATH).",
        "as_prompted",
    )
    stop_signals: tuple[str, ...] = _key(
        ("SIGTERM", "SIGINT", "SIGUSR1"),
        "Signals on which the driver finishes the step in flight, writes a checkpoint and exits with status 75, "
        "for the scheduler to requeue (docs/clusters.md, Preemption).",
    )
    damaged_checkpoint: str = _key(
        "error",
        "When the checkpoint a resume would load is damaged (a file missing or truncated, a tracker naming no "
        'intact folder): "error" (stop before loading, naming the file and the newest intact checkpoint) or '
        '"last_intact" (move it aside and resume from that one, saying so).',
    )

    @classmethod
    def from_config(cls, config: DictConfig) -> DuetConfig:
        duet = config.duet
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(duet) - known)
        if unknown:
            raise DuetConfigError(f"unknown keys under duet: {unknown}; known: {sorted(known)}")
        values = {name: duet[name] for name in known}
        values["stop_signals"] = tuple(values["stop_signals"])
        if values["small_prompt_length"] is None:
            values["small_prompt_length"] = config.data.max_prompt_length + config.data.max_response_length
        return cls(**values)

    @property
    def needs_baseline(self) -> bool:
        return self.marginal_utility != "off"


def uses_lora(model_config) -> bool:
    """verl's own test for a LoRA model (``RayPPOTrainer.ref_in_actor``): a rank or an adapter to load."""
    rank = model_config.get("lora", {}).get("rank", 0)
    if rank <= 0:
        rank = model_config.get("lora_rank", 0)
    return rank > 0 or model_config.get("lora_adapter_path") is not None


def _require(condition: bool, message: str, problems: list[str]) -> None:
    if not condition:
        problems.append(message)


def validate(config: DictConfig, duet: DuetConfig) -> None:
    """Fail fast, naming the keys, on combinations that would break hours into a run."""
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
    small = config[SMALL_BLOCK]
    _require(small.model.get("path") is not None, f"{SMALL_BLOCK}.model.path is required (the small model m)", problems)

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
    _require(
        not config.global_profiler.get("steps"),
        f"global_profiler.steps={config.global_profiler.steps}: the DUET trainer opens no profiler window (both "
        "models' workers share one process per GPU, and verl's torch profiler allows one window per process); "
        "profile a step with a tool outside the trainer, e.g. nsys on the worker processes",
        problems,
    )
    _check_rollout_engines(config, problems)
    if problems:
        raise DuetConfigError("invalid DUET config:\n- " + "\n- ".join(problems))


def _check_rollout_engines(config: DictConfig, problems: list[str]) -> None:
    """What the fused worker group and two GPU rollout engines on the same GPUs require."""
    rollouts = {block: config[block].rollout for block in ("actor_rollout_ref", SMALL_BLOCK)}
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


def optimizer_steps_per_training_step(config: DictConfig) -> dict[str, int]:
    """Each model's optimizer steps per DUET step. Both mini-batches count questions (verl's "prompts",
    ``ppo_mini_batch_size``): M's holds n responses per question and m's n·k answers per question."""
    batch = config.data.train_batch_size
    return {
        name: batch // config[block].actor.ppo_mini_batch_size * config[block].actor.ppo_epochs
        for name, block in ((LARGE, "actor_rollout_ref"), (SMALL, SMALL_BLOCK))
    }


def build_model_views(config: DictConfig, duet: DuetConfig) -> dict[str, DictConfig]:
    """One resolved config per model, each with ``actor_rollout_ref`` = that model's block.

    The views also carry what DUET fixes for each model: server tags (two models' rollout servers in one job),
    m's prompt length (its prompt budget) and m's ``rollout.n`` (answers per question, for mini-batch sizes).
    m has no reference model and inherits M's rollout backend name when it sets none.
    """
    large_view = OmegaConf.masked_copy(config, [k for k in config if k != SMALL_BLOCK])
    small_view = OmegaConf.masked_copy(config, [k for k in config if k not in ("actor_rollout_ref", SMALL_BLOCK)])
    with open_dict(small_view):
        small_view.actor_rollout_ref = OmegaConf.create(OmegaConf.to_container(config[SMALL_BLOCK], resolve=False))
    large_view = OmegaConf.create(OmegaConf.to_container(large_view, resolve=False))
    small_view = OmegaConf.create(OmegaConf.to_container(small_view, resolve=False))
    for view, tag in ((large_view, LARGE), (small_view, SMALL)):
        rollout = view.actor_rollout_ref.rollout
        with open_dict(rollout):
            rollout.custom = {**(rollout.get("custom") or {}), "server_tag": tag}
    small_rollout = small_view.actor_rollout_ref.rollout
    with open_dict(small_rollout):
        if small_rollout.get("name") is None:
            small_rollout.name = config.actor_rollout_ref.rollout.name
        small_rollout.prompt_length = duet.small_prompt_length
        # m never samples with this n: the trainer builds m's n·k rows per question itself, one answer each. It is
        # read by verl's RayPPOTrainer._update_actor (which ModelRole runs with m's config), whose mini-batch in rows
        # is ppo_mini_batch_size × rollout.n: with n·k, m's ppo_mini_batch_size counts questions, as M's does, and
        # each question's n·k answers land in one mini-batch (optimizer_steps_per_training_step).
        small_rollout.n = config.actor_rollout_ref.rollout.n * duet.small_rollouts_per_signal
    with open_dict(small_view):
        small_view.algorithm.use_kl_in_reward = False
        small_view.actor_rollout_ref.actor.use_kl_loss = False
    for view in (large_view, small_view):
        OmegaConf.resolve(view)
    return {LARGE: large_view, SMALL: small_view}


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


def _yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return f"[{', '.join(map(str, value))}]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def yaml_section() -> str:
    """The ``duet:`` section of ``duet_verl/config/duet_trainer.yaml``: every key with its meaning as a comment."""
    lines = [
        "# DUET's own keys, documented in DuetConfig (duet_verl/train/duet_config.py): edit them there; this section",
        "# is its output (`python -m duet_verl.train.duet_config`), checked by tests/train/test_duet_config.py.",
        "duet:",
    ]
    for key in fields(DuetConfig):
        meaning = key.metadata["meaning"] + (f" Paper: {key.metadata['paper']}." if key.metadata["paper"] else "")
        lines += textwrap.wrap(meaning, width=116, initial_indent="  # ", subsequent_indent="  # ")
        lines += [f"  {key.name}: {_yaml_value(key.default)}", ""]
    return "\n".join(lines[:-1]) + "\n"


def markdown_table() -> str:
    """The ``duet.*`` table of docs/training.md."""
    rows = ["| key | default | paper | meaning |", "|---|---|---|---|"]
    for key in fields(DuetConfig):
        assert key.default is not MISSING, key.name
        meaning = key.metadata["meaning"].replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{key.name}` | {_yaml_value(key.default)} | {key.metadata['paper'] or ''} | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    # python -m duet_verl.train.duet_config [yaml|markdown]: the duet.* keys as the yaml section or the docs table
    print(markdown_table() if sys.argv[1:] == ["markdown"] else yaml_section(), end="")
