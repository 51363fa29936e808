"""The ``hf`` rollout adapter with weight sync switched off (see ``no_weight_sync``)."""

from duet_verl.cpu.hf_rollout import HFServerAdapter


class NoSyncHFServerAdapter(HFServerAdapter):
    """Walks the weight generator (a collective over FSDP shards) but sends no weights to the server.

    The server keeps the weights it started with (random ones under ``rollout.load_format=dummy``); it is still
    told the step, which verl's trainer reads from every generation.
    """

    async def update_weights(self, weights, wire_format="named_tensors", global_steps=None, **kwargs):
        for _ in weights:
            pass
        if self._has_server and global_steps is not None:
            await self.server.set_global_steps.remote(global_steps)
