"""The ``cpu`` verl platform: gloo collectives and a stand-in device module, selected by ``VERL_PLATFORM=cpu``.

verl 0.9 reaches the accelerator only through ``verl.plugin.platform.get_platform()``; registering a platform
named ``cpu`` therefore moves every worker onto the CPU. Ray still schedules workers on logical "GPU"
resources (declare them with ``+ray_kwargs.ray_init.num_gpus=N``), so placement groups work unchanged.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

PLATFORM_NAME = "cpu"
CPU_DEVICE = "cpu"


def cpu_platform_selected() -> bool:
    """Whether this process runs verl on the CPU (the one switch: ``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


class _CPUDeviceModule(ModuleType):
    """``torch.cuda``-shaped facade over ``torch.cpu``: memory queries report 0, cache/sync calls do nothing."""

    def __init__(self):
        super().__init__("duet_verl_cpu_device")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> str:
        return CPU_DEVICE

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        return "CPU"

    @staticmethod
    def set_device(device: Any) -> None:
        return None

    @staticmethod
    def synchronize(device: Any = None) -> None:
        return None

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        return 0

    memory_reserved = max_memory_allocated = max_memory_reserved = memory_allocated

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        available = os.sysconf("SC_AVPHYS_PAGES") * page_size
        return available, pages * page_size

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        return None


CPU_DEVICE_MODULE = _CPUDeviceModule()


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """verl on CPU processes: device ``cpu``, collectives over gloo, Ray's logical ``GPU`` resource for placement.

    ``current_device()`` returns the string ``"cpu"`` rather than an index: verl passes it straight to
    ``tensor.to(...)``, where the index 0 would mean ``cuda:0``.
    """

    @property
    def device_name(self) -> str:
        return CPU_DEVICE

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return CPU_DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: a GPU-less Ray driver on a GPU cluster must not silently train on CPU.
        return cpu_platform_selected()

    def current_device(self) -> str:  # type: ignore[override]
        return CPU_DEVICE

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets this for actors holding logical GPUs; nothing reads it on CPU.
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def use_gloo_process_groups() -> None:
    """Make verl's process-group setup use plain gloo.

    ``initialize_global_process_group_ray`` builds ``"cpu:gloo,<device>:<backend>"``, which on CPU becomes
    the invalid ``"cpu:gloo,cpu:gloo"``. The wrapper defaults the backend to ``"gloo"``; modules that
    imported the function by name before this ran are rebound too.
    """
    from verl.utils import distributed

    original = distributed.initialize_global_process_group_ray
    if getattr(original, "_duet_cpu", False):
        return

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return original(timeout_second=timeout_second, backend=backend or "gloo")

    initialize_global_process_group_ray._duet_cpu = True
    distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    for module_name in ("verl.workers.engine_workers",):
        module = sys.modules.get(module_name)
        if module is not None:
            module.initialize_global_process_group_ray = initialize_global_process_group_ray
