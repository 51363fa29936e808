"""Rollout helpers shared by the CPU ``hf`` backend and the vLLM path."""

from __future__ import annotations


def _load_tagged_vllm_replica():
    from duet_verl.rollout.vllm_tagged import TaggedvLLMReplica

    return TaggedvLLMReplica


def register_tagged_vllm() -> None:
    """Give ``rollout.name=vllm`` tagged server names (identical to verl's when untagged); loaded lazily, so it
    costs nothing where vLLM is not installed."""
    from verl.workers.rollout.base import _ROLLOUT_REGISTRY
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    _ROLLOUT_REGISTRY[("vllm", "async")] = "duet_verl.rollout.vllm_tagged.TaggedvLLMServerAdapter"
    RolloutReplicaRegistry.register("vllm", _load_tagged_vllm_replica)
