"""verl's SFT trainer on the CPU backend: ``torchrun ... -m duet_verl.cpu.sft_trainer <hydra overrides>``.

Runs ``verl.trainer.sft_trainer`` (same config, same overrides) after one fix for ``VERL_PLATFORM=cpu``:
verl's torchrun entry point initialises its process group with ``"cpu:gloo,<device>:<backend>"``, which on
the cpu platform is the invalid ``"cpu:gloo,cpu:gloo"``; here it gets plain gloo. The trainer's engines are
the CPU FSDP engines that ``duet_verl.cpu`` registers. Overrides a CPU run needs: ``trainer.device=cpu``,
``engine.strategy=fsdp2``, ``engine.use_torch_compile=False``, ``model.use_remove_padding=False`` (needs
flash-attn), ``+model.override_config.attn_implementation=sdpa``, ``data.pad_mode=no_padding``.
"""

from __future__ import annotations

import os
from datetime import timedelta


def use_gloo_for_torchrun() -> None:
    """Make ``verl.utils.distributed.initialize_global_process_group`` create a plain gloo process group."""
    import torch.distributed
    from verl.utils import distributed

    def initialize_global_process_group(timeout_second=36000):
        torch.distributed.init_process_group(
            backend="gloo", timeout=timedelta(seconds=timeout_second), init_method=os.environ.get("DIST_INIT_METHOD")
        )
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    distributed.initialize_global_process_group = initialize_global_process_group


def main() -> None:
    from verl.trainer import sft_trainer

    from duet_verl.cpu.platform import cpu_platform_selected

    if cpu_platform_selected():
        use_gloo_for_torchrun()
    sft_trainer.main()


if __name__ == "__main__":
    main()
