"""vLLM rollout with tagged server names (GPU path): verl's vLLM replica and adapter, with one override each.

verl 0.9.1 names vLLM server actors ``vllm_server_{replica}_{node}`` and the worker-side adapter finds them by
that name, so two models' servers would collide. Both classes here take the prefix from
``duet_verl.rollout.naming`` (``vllm_{tag}_`` when ``rollout.custom.server_tag`` is set, ``vllm_`` otherwise),
the same mechanism as the CPU ``hf`` rollout. Untagged, names are exactly verl's.
"""

from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMReplica
from verl.workers.rollout.vllm_rollout.vllm_rollout import ServerAdapter

from duet_verl.rollout.naming import server_name_prefix


class TaggedvLLMReplica(vLLMReplica):
    def _get_server_name_prefix(self) -> str:
        return server_name_prefix(self.config)


class TaggedvLLMServerAdapter(ServerAdapter):
    def _get_server_name_prefix(self) -> str:
        return server_name_prefix(self.config)
