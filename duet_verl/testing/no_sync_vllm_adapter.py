"""The ``vllm`` rollout adapter with weight sync switched off (see ``no_weight_sync``); needs vllm installed."""

from duet_verl.rollout.vllm_tagged import TaggedvLLMServerAdapter


class NoSyncvLLMServerAdapter(TaggedvLLMServerAdapter):
    """As ``NoSyncHFServerAdapter``: the weight generator is walked, nothing reaches the vLLM server."""

    async def update_weights(self, weights, global_steps=None, wire_format="named_tensors", **kwargs):
        for _ in weights:
            pass
        if global_steps is not None and self._ensure_server_handle():
            await self.server_handle.set_global_steps.remote(global_steps)
