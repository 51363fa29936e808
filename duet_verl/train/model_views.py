"""Per-model views of the config: verl's code reads one model's settings, DUET has two.

verl reads ``config.actor_rollout_ref`` everywhere (workers, agent loop, server manager, reward loop) and its
yaml interpolations are absolute (``${actor_rollout_ref.model.path}``). Each model therefore gets its own view
of the whole *unresolved* config whose ``actor_rollout_ref`` is that model's block, resolved afterwards, so
m's interpolations point at m's own keys.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from duet_verl.train.duet_config import LARGE, SMALL, SMALL_BLOCK, DuetConfig


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


def uses_lora(model_config) -> bool:
    """verl's own test for a LoRA model (``RayPPOTrainer.ref_in_actor``): a rank or an adapter to load."""
    rank = model_config.get("lora", {}).get("rank", 0)
    if rank <= 0:
        rank = model_config.get("lora_rank", 0)
    return rank > 0 or model_config.get("lora_adapter_path") is not None
