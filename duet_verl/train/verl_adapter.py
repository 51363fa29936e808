"""Every call the DUET step makes into verl's per-model machinery: the one place to change for verl's next release.

One verl ``RayPPOTrainer`` drives two models. What that borrows from verl 0.9.1 is here, so that moving to verl's
``neo`` branch (docs/development.md, "verl's next release: the `neo` branch") changes this module, not the step:

- ``ModelRole``: one model's handles, passed as ``self`` to the trainer's per-model methods
  (``_compute_old_log_prob``, ``_compute_ref_log_prob``, ``_update_actor``), and its rollout engine's generate,
  weight sync and sleep. ``neo`` reads a data plane inside those methods: a ``ModelRole`` must then carry one.
- ``compute_old_log_probs``, ``apply_large_kl``, ``compute_advantages``, ``model_metrics``: verl's pre-update
  plumbing and per-model metrics, as its ``fit`` does them for one model.
- ``start_workers``: both models' ``ActorRolloutRefWorker`` s colocated in one worker group, with their rollout
  servers, agent loops, weight-sync managers and m's reward loop.
- ``object_array`` and the padding inside ``ModelRole.generate``: how a DataProto is built by hand, which
  ``neo``'s NeoProto changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
import torch
from omegaconf import DictConfig, OmegaConf
from verl import DataProto
from verl.protocol import pad_dataproto_to_divisor, unpad_dataproto
from verl.single_controller.ray import RayClassWithInitArgs
from verl.single_controller.ray.base import create_colocated_worker_cls
from verl.trainer.ppo.metric_utils import compute_data_metrics, compute_timing_metrics
from verl.trainer.ppo.ray_trainer import (
    RayPPOTrainer,
    Role,
    apply_kl_penalty,
    compute_advantage,
    compute_response_mask,
)
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.debug import marked_timer
from verl.utils.debug.metrics import calculate_debug_metrics
from verl.utils.metric import reduce_metrics
from verl.workers.engine_workers import ActorRolloutRefWorker

from duet_verl.rollout.naming import server_name_prefix
from duet_verl.train.duet_config import LARGE, SMALL


def object_array(items: list) -> np.ndarray:
    """A ``non_tensor_batch`` column: one object per row, even when the items are lists or dicts."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


@dataclass
class ModelRole:
    """One model's handles. Carries the attributes verl's ``RayPPOTrainer`` RPC wrappers read from ``self``
    (``config``, ``actor_rollout_wg``, ...), so the trainer calls those wrappers for m as well as for M."""

    name: str
    config: DictConfig
    actor_rollout_wg: Any = None
    server_manager: Any = None
    agent_loop: Any = None
    checkpoint_manager: Any = None
    distillation_config: Any = None
    ref_in_actor: bool = False

    @property
    def ref_policy_wg(self):
        return self.actor_rollout_wg

    def sync_weights(self, global_steps: int) -> None:
        """Wake the rollout engine with the actor's current weights."""
        self.checkpoint_manager.update_weights(global_steps)

    def sleep_engine(self) -> None:
        self.checkpoint_manager.sleep_replicas()

    def generate(self, batch: DataProto) -> DataProto:
        """The agent loop's answers to ``batch``, with the response mask verl's update reads. The loop splits a
        batch evenly over its workers (DataProto.chunk asserts it): pad with copies of the first rows, as verl's
        own _validate does, and drop their outputs."""
        padded, pad_size = pad_dataproto_to_divisor(batch, self.config.actor_rollout_ref.rollout.agent.num_workers)
        output = unpad_dataproto(self.agent_loop.generate_sequences(padded), pad_size=pad_size)
        output.meta_info.pop("timing", None)
        output.batch["response_mask"] = compute_response_mask(output)
        return output

    def compute_log_probs(self, batch: DataProto) -> tuple[DataProto, float]:
        return RayPPOTrainer._compute_old_log_prob(self, batch)

    def compute_ref_log_probs(self, batch: DataProto) -> DataProto:
        return RayPPOTrainer._compute_ref_log_prob(self, batch)

    def update_actor(self, batch: DataProto) -> dict[str, float]:
        output = RayPPOTrainer._update_actor(self, batch)
        return {f"{self.name}/{key}": value for key, value in reduce_metrics(output.meta_info["metrics"]).items()}


def compute_old_log_probs(
    trainer: RayPPOTrainer, role: ModelRole, batch: DataProto, metrics: dict, timing: dict
) -> None:
    """verl's pre-update plumbing for one model, as ``RayPPOTrainer.fit`` does it: balance sequence lengths over
    the workers (the trainer's balancer, which sizes its partitions by M's worker group), the meta_info its actor
    reads, the old log-probs, and the rollout-vs-actor check."""
    if trainer.config.trainer.balance_batch:
        trainer._balance_batch(batch, metrics=metrics, logging_prefix=f"{role.name}/global_seqlen")
    batch.meta_info["global_token_num"] = torch.sum(batch.batch["attention_mask"], dim=-1).tolist()
    batch.meta_info["images_seqlens"] = []  # read by verl's MFU estimate; text only here
    batch.meta_info["temperature"] = role.config.actor_rollout_ref.rollout.temperature
    with marked_timer(f"old_log_prob_{role.name}", timing):
        old_log_prob, mfu = role.compute_log_probs(batch)
        old_log_prob.batch.pop("entropys")
        batch.union(old_log_prob)
    metrics[f"{role.name}/perf/mfu/actor_infer"] = mfu
    metrics[f"{role.name}/perf/total_num_tokens"] = sum(batch.meta_info["global_token_num"])
    if "rollout_log_probs" in batch.batch.keys():
        debug_metrics = calculate_debug_metrics(batch)
        metrics.update({f"{role.name}/{key}": value for key, value in debug_metrics.items()})


def apply_large_kl(
    trainer: RayPPOTrainer, large: ModelRole, large_batch: DataProto, metrics: dict, timing: dict
) -> None:
    """M's KL against its frozen reference, as verl's ``fit`` does, per the trainer's (M's) algorithm config: in
    the reward (paper, a KL-controlled penalty on every token), in the actor loss (``actor.use_kl_loss``: the
    update reads ``ref_log_prob``), or not at all (no reference model was built)."""
    if trainer.use_reference_policy:
        with marked_timer(f"ref_{large.name}", timing):
            large_batch.union(large.compute_ref_log_probs(large_batch))
    if trainer.config.algorithm.use_kl_in_reward:
        _, kl_metrics = apply_kl_penalty(
            large_batch, kl_ctrl=trainer.kl_ctrl_in_reward, kl_penalty=trainer.config.algorithm.kl_penalty
        )
        metrics.update({f"{large.name}/{key}": value for key, value in kl_metrics.items()})
    else:
        large_batch.batch["token_level_rewards"] = large_batch.batch["token_level_scores"]


def compute_advantages(algorithm: DictConfig, role: ModelRole, batch: DataProto) -> None:
    """GRPO advantages within each group (``uid``): M's n responses to a question, m's answers per its grouping."""
    compute_advantage(
        batch,
        adv_estimator=algorithm.adv_estimator,
        num_repeat=role.config.actor_rollout_ref.rollout.n,
        norm_adv_by_std_in_grpo=algorithm.get("norm_adv_by_std_in_grpo", True),
        config=algorithm,
    )


def model_metrics(role: ModelRole, batch: DataProto, timing: dict) -> dict[str, float]:
    """verl's data metrics for one model's batch, and its per-token timings under verl's section names from this
    model's own timers, all under the model's name."""
    metrics = compute_data_metrics(batch=batch, use_critic=False)
    sections = {"gen": f"gen_{role.name}", "ref": f"ref_{role.name}", "update_actor": f"update_{role.name}"}
    timed = {section: timing[name] for section, name in sections.items() if name in timing}
    per_token = compute_timing_metrics(batch=batch, timing_raw=timed)
    metrics.update({key: value for key, value in per_token.items() if key.startswith("timing_per_token")})
    return {f"{role.name}/{key}": value for key, value in metrics.items()}


def start_workers(trainer: RayPPOTrainer, large: ModelRole, small: ModelRole) -> None:
    """Both models in one fused worker group (one Ray actor per GPU holding both); M's rollout servers are created
    and put to sleep before m's. Fills both roles' handles, and the trainer's own as verl's ``init_workers`` would
    for M alone (``actor_rollout_wg``, ``ref_policy_wg``, ``checkpoint_manager``), plus the reward loop that scores
    m's answers with m's tokenizer."""
    from verl.checkpoint_engine import CheckpointEngineManager
    from verl.experimental.agent_loop import AgentLoopManager
    from verl.experimental.reward_loop import RewardLoopManager
    from verl.workers.rollout.llm_server import LLMServerManager

    trainer.resource_pool_manager.create_resource_pool()
    pool = trainer.resource_pool_manager.get_resource_pool(Role.ActorRolloutRef)
    worker_cls = ray.remote(ActorRolloutRefWorker)
    class_dict = {
        # M's reference model exists only when a KL term reads it (verl's need_reference_policy), and with
        # LoRA it is M's base inside the actor
        LARGE: RayClassWithInitArgs(
            cls=worker_cls,
            config=large.config.actor_rollout_ref,
            role="actor_rollout_ref" if trainer.use_reference_policy and not trainer.ref_in_actor else "actor_rollout",
        ),
        SMALL: RayClassWithInitArgs(cls=worker_cls, config=small.config.actor_rollout_ref, role="actor_rollout"),
    }
    fused = trainer.ray_worker_group_cls(
        resource_pool=pool,
        ray_cls_with_init=create_colocated_worker_cls(class_dict=class_dict),
        device_name=trainer.device_name,
        **profiler_worker_kwargs(trainer.config.global_profiler),
    )
    worker_groups = fused.spawn(prefix_set=class_dict.keys())
    for role in (large, small):
        role.actor_rollout_wg = worker_groups[role.name]
        role.actor_rollout_wg.init_model()
    trainer.actor_rollout_wg = large.actor_rollout_wg
    if trainer.use_reference_policy:
        trainer.ref_policy_wg = large.actor_rollout_wg

    trainer.reward_loop_manager = RewardLoopManager(config=small.config, rm_resource_pool=None)
    for role in (large, small):
        role.server_manager = LLMServerManager.create(
            config=role.config, worker_group=role.actor_rollout_wg, rollout_resource_pool=pool
        )
        role.agent_loop = AgentLoopManager.create(
            config=role.config,
            llm_client=role.server_manager.get_client(),
            reward_loop_worker_handles=trainer.reward_loop_manager.reward_loop_workers if role is small else None,
        )
        role.checkpoint_manager = CheckpointEngineManager(
            config=omega_conf_to_dataclass(role.config.actor_rollout_ref.rollout.checkpoint_engine),
            actor_wg=role.actor_rollout_wg,
            replicas=role.server_manager.get_replicas(),
        )
        role.sleep_engine()
        prefix = f"{server_name_prefix(role.config.actor_rollout_ref.rollout)}server_"
        servers = sorted(name for name in ray.util.list_named_actors() if name.startswith(prefix))
        print(f"[duet] {role.name} rollout servers: {', '.join(servers)}", flush=True)
    trainer.checkpoint_manager = large.checkpoint_manager


def profiler_worker_kwargs(profiler: DictConfig) -> dict:
    """What verl's ``init_workers`` passes its worker groups for a profiled run (nsys wraps the workers)."""
    if not profiler.get("steps"):
        return {}
    kwargs = {"profile_steps": list(profiler.steps)}
    if profiler.get("tool") == "nsys":
        kwargs["worker_nsight_options"] = OmegaConf.to_container(profiler.global_tool_config.nsys.worker_nsight_options)
    return kwargs
