"""The CPU settings live once, in ``duet_verl.cpu.overrides``: the environment and the DUET reward manager the shell
keeps for itself (and for the GPU recipes) are the ones Python uses. That the CPU recipes launch exactly the lists
Python builds is checked with the other recipes (tests/recipes/test_recipes.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from duet_verl.cpu.overrides import DUET_REWARD_MANAGER, CpuRun, main

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def shell(script: str, **env: str) -> str:
    """``script`` run by bash after sourcing the CPU settings (``DRY_RUN``: nothing is built)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_CPU_", "CPU_", "RAY_"))}
    command = f'source "{RECIPES}/common_cpu.sh"; {script}'
    result = subprocess.run(["bash", "-c", command], env={**clean, "DRY_RUN": "1", **env}, capture_output=True,
                            text=True, check=True, timeout=30)  # fmt: skip
    return result.stdout


@pytest.mark.parametrize("rollout", ["hf", "vllm"])
def test_the_shell_exports_the_environment_python_runs_with(rollout):
    names = " ".join(sorted({*CpuRun(rollout="vllm").env(), "VLLM_CPU_KVCACHE_SPACE"}))
    printed = shell(f'for name in {names}; do [ -n "${{!name+x}}" ] && echo "$name=${{!name}}"; done; true',
                    CPU_ROLLOUT=rollout)  # fmt: skip
    assert dict(line.split("=", 1) for line in printed.splitlines()) == CpuRun(rollout=rollout).env()


def test_the_shell_and_python_score_single_model_runs_with_the_same_reward_manager():
    printed = shell('printf "%s\\n" "${duet_reward_overrides[@]}"')
    assert tuple(printed.splitlines()) == DUET_REWARD_MANAGER


def test_cpu_settings_say_what_is_wrong(capsys):
    with pytest.raises(ValueError, match="CPU_ROLLOUT must be hf or vllm, got 'gpu'"):
        CpuRun(rollout="gpu")
    with pytest.raises(SystemExit):
        main(["duet", "--steps", "1", "--n", "2", "--batch", "2", "--lr", "1e-4", "--out-dir", "/tmp/x"])
    assert "duet needs --k" in capsys.readouterr().err


def test_a_local_ray_gets_logical_gpus_and_a_cluster_keeps_its_own():
    local, cluster = CpuRun(workers=3).ray(), CpuRun(workers=3, local_ray=False).ray()
    assert "+ray_kwargs.ray_init.num_gpus=3" in local and "trainer.n_gpus_per_node=3" in local
    assert not [o for o in cluster if o.startswith(("+ray_kwargs", "ray_kwargs"))]
    vllm = CpuRun(rollout="vllm").model("small_actor_rollout_ref")
    assert "+small_actor_rollout_ref.rollout.enable_sleep_mode=False" in vllm
    assert not [o for o in CpuRun().model("small_actor_rollout_ref") if "enable_sleep_mode" in o]
