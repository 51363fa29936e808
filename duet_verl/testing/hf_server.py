"""An ``hf`` rollout server outside Ray, for tests and benchmarks that exercise it directly."""

from __future__ import annotations

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from duet_verl.cpu.hf_rollout import HFRolloutServer


def standalone_hf_server(model_dir, *overrides: str) -> HFRolloutServer:
    """The server verl's ``ppo_trainer`` config would start for ``model_dir``; ``overrides`` are hydra overrides
    (e.g. ``actor_rollout_ref.rollout.max_num_seqs=1``)."""
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(
            config_name="ppo_trainer",
            overrides=[f"actor_rollout_ref.model.path={model_dir}", "actor_rollout_ref.rollout.name=hf", *overrides],
        )
    OmegaConf.resolve(config)
    return HFRolloutServer(config.actor_rollout_ref.rollout, config.actor_rollout_ref.model, replica_rank=0)
