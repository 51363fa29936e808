"""Tagged names for rollout server actors, so that two models can each have servers in one Ray job.

verl names a replica's server actor ``{rollout.name}_server_{replica}_{node}`` and the adapter inside the
training worker finds it by that name; two models with the same rollout backend would collide. A model's
rollout config may carry ``rollout.custom.server_tag`` (the DUET trainer sets ``large`` / ``small``); the tag
is then part of every name both sides compute: ``{rollout.name}_{tag}_server_{replica}_{node}``.
"""

from __future__ import annotations

from typing import Any

SERVER_TAG_KEY = "server_tag"


def server_tag(rollout_config: Any) -> str:
    """The model's server tag from ``rollout.custom.server_tag`` ("" when untagged)."""
    custom = getattr(rollout_config, "custom", None) or {}
    tag = custom.get(SERVER_TAG_KEY) or ""
    if tag and not str(tag).replace("_", "").isalnum():
        raise ValueError(f"rollout.custom.{SERVER_TAG_KEY}={tag!r}: use letters, digits and '_' only")
    return str(tag)


def server_name_prefix(rollout_config: Any) -> str:
    """Prefix of every server actor name of this model: ``vllm_`` untagged, ``vllm_large_`` tagged."""
    tag = server_tag(rollout_config)
    return f"{rollout_config.name}_{tag}_" if tag else f"{rollout_config.name}_"


def server_actor_name(rollout_config: Any, replica_rank: int, node_rank: int = 0) -> str:
    """The Ray actor name of one server of one replica."""
    return f"{server_name_prefix(rollout_config)}server_{replica_rank}_{node_rank}"
