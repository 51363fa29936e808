"""verl's FSDP/FSDP2 training engines, registered for device ``cpu``.

verl registers its FSDP engines for ``cuda`` and ``npu`` only. On CPU they work as they are with one
exception: FSDP2's ``CPUOffloadPolicy(pin_memory=True)`` (used for the reference model) needs an
accelerator to pin memory for. The CPU engines build their FSDP module with unpinned offload.
Use ``actor_rollout_ref.actor.strategy=fsdp2`` on CPU: FSDP1's ``sync_module_states`` fails there.
"""

from __future__ import annotations

from contextlib import contextmanager

from verl.workers.engine import EngineRegistry
from verl.workers.engine.fsdp import transformer_impl
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, FSDPEngineWithValueHead

from duet_verl.cpu.platform import CPU_DEVICE


@contextmanager
def unpinned_cpu_offload():
    """Within the block, verl's FSDP engine builds ``CPUOffloadPolicy(pin_memory=False)``."""
    original = transformer_impl.CPUOffloadPolicy

    def unpinned(*args, **kwargs):
        return original(*args, **{**kwargs, "pin_memory": False})

    transformer_impl.CPUOffloadPolicy = unpinned
    try:
        yield
    finally:
        transformer_impl.CPUOffloadPolicy = original


@EngineRegistry.register(model_type="language_model", backend=["fsdp", "fsdp2"], device=CPU_DEVICE)
class CPUFSDPEngineWithLMHead(FSDPEngineWithLMHead):
    """verl's FSDP engine for causal LMs (actor, reference), with unpinned CPU offload."""

    def _build_fsdp_module(self, module):
        with unpinned_cpu_offload():
            return super()._build_fsdp_module(module)


@EngineRegistry.register(model_type="value_model", backend=["fsdp", "fsdp2"], device=CPU_DEVICE)
class CPUFSDPEngineWithValueHead(FSDPEngineWithValueHead):
    """verl's FSDP engine for value models (critic), with unpinned CPU offload."""

    def _build_fsdp_module(self, module):
        with unpinned_cpu_offload():
            return super()._build_fsdp_module(module)
