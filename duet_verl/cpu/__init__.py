"""Run verl's real trainer on CPU-only machines: one switch, ``VERL_PLATFORM=cpu``.

With duet-verl installed, ``import verl`` loads ``duet_verl.verl_plugin`` in every process (a ``verl.plugins``
entry point), which calls :func:`register`. The ``hf`` rollout and the ``cpu`` platform are always registered
(inert until chosen); with ``VERL_PLATFORM=cpu`` the process also gets gloo process groups and the FSDP
engines for device ``cpu``. A CPU run also needs a few hydra overrides (logical GPUs for Ray placement,
``rollout.name=hf``, FSDP2, fp32, sdpa attention); :mod:`duet_verl.cpu.overrides` lists them with the reason for
each.
"""

from __future__ import annotations

HF_ROLLOUT = "hf"


def _load_hf_replica():
    from duet_verl.cpu.hf_rollout import HFReplica

    return HFReplica


def register_hf_rollout() -> None:
    """Make ``rollout.name=hf`` resolve on both sides: the trainer's replica and the worker's adapter."""
    from verl.workers.rollout.base import _ROLLOUT_REGISTRY
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    _ROLLOUT_REGISTRY[(HF_ROLLOUT, "async")] = "duet_verl.cpu.hf_rollout.HFServerAdapter"
    RolloutReplicaRegistry.register(HF_ROLLOUT, _load_hf_replica)


_registered = False


def register() -> None:
    """Register the CPU backend with verl; runs once per process (later calls do nothing)."""
    global _registered
    if _registered:
        return
    _registered = True
    from duet_verl.cpu.platform import cpu_platform_selected, use_gloo_process_groups

    register_hf_rollout()
    if cpu_platform_selected():
        use_gloo_process_groups()
        import duet_verl.cpu.engines  # noqa: F401  (registers the FSDP engines for device "cpu")
