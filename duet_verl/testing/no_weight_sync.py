"""Switch off the rollout's weight sync (``hf`` and ``vllm``), to show that the sync is what aligns rollout and actor.

Load it with ``VERL_USE_EXTERNAL_MODULES=duet_verl.testing.no_weight_sync``. It runs inside ``import verl``, so it
only registers class paths (defined in ``no_sync_adapter`` and ``no_sync_vllm_adapter``); importing the adapters
here could re-enter a half-imported ``duet_verl.cpu.hf_rollout``.
"""

from verl.workers.rollout.base import _ROLLOUT_REGISTRY

import duet_verl.verl_plugin  # noqa: F401  (duet-verl's registrations first, whatever order verl loads modules in)
from duet_verl.cpu import HF_ROLLOUT

_ROLLOUT_REGISTRY[(HF_ROLLOUT, "async")] = "duet_verl.testing.no_sync_adapter.NoSyncHFServerAdapter"
_ROLLOUT_REGISTRY[("vllm", "async")] = "duet_verl.testing.no_sync_vllm_adapter.NoSyncvLLMServerAdapter"
