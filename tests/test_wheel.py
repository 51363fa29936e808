"""duet-verl from its wheel, as a user installs it (``duet_verl.testing.wheel``): the package and its data are in
the wheel, nothing else is, and the CPU main job's entry point and the CPU settings run from it outside any checkout.
The main job trains from the wheel in the CI race (``tests/world/test_labour_race.py``)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(python: Path, *args: str, cwd: Path) -> str:
    result = subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_wheel_holds_the_package_and_its_data_only(wheel_python):
    (wheel,) = (wheel_python.parents[2] / "dist").glob("duet_verl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"duet_verl", "duet_verl-0.1.0.dist-info"}
    for data in ("duet_verl/config/duet_trainer.yaml", "duet_verl/config/agent_loops.yaml",
                 "duet_verl/worlds/assets/labour_pair/facts.json",
                 "duet_verl/worlds/assets/labour_pair/large/model.safetensors",
                 "duet_verl/worlds/assets/labour_pair/small/tokenizer.json"):  # fmt: skip
        assert data in names, data


def test_the_main_job_and_the_cpu_settings_run_from_the_wheel(wheel_python, tmp_path):
    where = run(wheel_python, "-c", "import duet_verl; print(duet_verl.__file__)", cwd=tmp_path)
    assert Path(where).is_relative_to(wheel_python.parents[1]), where  # the scratch virtualenv's, not the checkout's
    assert "--workers" in run(wheel_python, "-m", "duet_verl.worlds.labour_pair", "--help", cwd=tmp_path)
    printed = run(wheel_python, "-m", "duet_verl.cpu.overrides", "grpo", "--steps", "2", "--n", "2", "--batch", "4",
                  "--lr", "1e-5", "--out-dir", str(tmp_path), cwd=tmp_path)  # fmt: skip
    assert "actor_rollout_ref.rollout.name=hf" in printed.splitlines()
    code = "from pathlib import Path; from duet_verl.worlds.labour_pair import prepare; print(prepare(Path('out')))"
    assert "labour_pair/large" in run(wheel_python, "-c", code, cwd=tmp_path)  # the shipped pair, from the wheel
