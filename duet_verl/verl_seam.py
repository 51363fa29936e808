"""Every private verl name duet-verl touches, in one list.

duet-verl pins verl==0.9.1 and extends it from outside, so a few of verl's private methods and registries are part
of its contract. ``tests/test_verl_guard.py`` checks each entry against the installed verl's source, and scans
duet-verl's own source for private names that verl defines: one missing from this list fails the suite, so the list
stays complete and a verl upgrade breaks loudly here, not an hour into a run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrivateContact:
    module: str  # the verl module that defines the name
    owner: str | None  # its class; None for a module-level name
    name: str
    use: str  # what duet-verl does with it, and where


RAY_TRAINER = "verl.trainer.ppo.ray_trainer"
VLLM_ROLLOUT = "verl.workers.rollout.vllm_rollout"

PRIVATE_CONTACTS = (
    # ModelRole runs verl's per-model plumbing with itself as ``self`` (one RayPPOTrainer serves two models); the
    # guard also checks that these methods read only attributes a ModelRole has.
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_compute_old_log_prob", "run by ModelRole (train/verl_adapter.py)"),
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_compute_ref_log_prob", "run by ModelRole (train/verl_adapter.py)"),
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_update_actor", "run by ModelRole (train/verl_adapter.py)"),
    # DuetTrainer inherits these and calls them on itself.
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_get_gen_batch", "M's generation batch (train/rollout.py)"),
    PrivateContact(
        RAY_TRAINER, "RayPPOTrainer", "_balance_batch", "balancing (train/verl_adapter.py); M alone's λ metric"
    ),
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_maybe_log_val_generations", "validation table (DuetTrainer)"),
    # DuetTrainer replaces these: two models' checkpoints, the DUET chain's validation.
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_save_checkpoint", "overridden (train/checkpointing.py)"),
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_load_checkpoint", "overridden (train/checkpointing.py)"),
    PrivateContact(RAY_TRAINER, "RayPPOTrainer", "_validate", "overridden by DuetTrainer"),
    # Rollout backends: the worker side resolves adapters through this registry, which has no public register.
    PrivateContact(
        "verl.workers.rollout.base", None, "_ROLLOUT_REGISTRY", "hf and tagged-vLLM adapters (cpu/, rollout/)"
    ),
    PrivateContact(
        "verl.workers.rollout.replica", "RolloutReplica", "_server_handle", "set by HFReplica.launch_servers (cpu/)"
    ),
    PrivateContact(
        "verl.workers.rollout.replica", "RolloutReplica", "_server_address", "set by HFReplica.launch_servers (cpu/)"
    ),
    PrivateContact(
        f"{VLLM_ROLLOUT}.vllm_rollout", "ServerAdapter", "_get_server_name_prefix", "tagged names (rollout/)"
    ),
    PrivateContact(
        f"{VLLM_ROLLOUT}.vllm_async_server", "vLLMReplica", "_get_server_name_prefix", "tagged names (rollout/)"
    ),
    PrivateContact(
        f"{VLLM_ROLLOUT}.vllm_rollout", "ServerAdapter", "_ensure_server_handle", "no-weight-sync test adapter"
    ),
    # The CPU engines build the FSDP module with CPU offload (cpu/engines.py).
    PrivateContact(
        "verl.workers.engine.fsdp.transformer_impl", "FSDPEngine", "_build_fsdp_module", "overridden (cpu/)"
    ),
)
