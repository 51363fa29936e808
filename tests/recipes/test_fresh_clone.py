"""The README's main job on a fresh clone, before anything else ran: ``bash recipes/run_duet_cpu_world.sh`` with no
virtualenv active and no ``.venv`` builds the environment from the lock (``recipes/setup_env.sh``, progress shown),
then trains and prints its summary. The clone is this checkout's files as a clone has them (``tracked_copy``); pip
may reuse its download cache, but ``.venv`` is built anew. One training step (``STEPS=1``): the command is the
README's, the run is short.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from duet_verl.experiments.runs import HELDOUT, METRICS_FILE, read_metrics
from duet_verl.testing.wheel import tracked_copy
from duet_verl.worlds.labour_pair import HELDOUT_TOKENS, PAIR_HELDOUT

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]


def test_the_main_job_runs_on_a_fresh_clone_without_the_test_command(tmp_path, record_wall_time):
    clone = tracked_copy(ROOT, tmp_path / "clone")
    assert not (clone / ".venv").exists()
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env.update(STEPS="1", OUT_DIR=str(tmp_path / "run"))
    start = time.perf_counter()
    run = subprocess.run(["bash", "recipes/run_duet_cpu_world.sh"], cwd=clone, env=env, capture_output=True,
                         text=True, timeout=1800)  # fmt: skip
    seconds = time.perf_counter() - start
    record_wall_time("the README's main job on a fresh clone: .venv from the lock + 1 DUET step", seconds)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "[.venv] installing the " in output and "fetched" in output, "the install shows its progress"
    assert "DUET on the division-of-labour world, 1 step (first 1 step → last 1 step):" in output, output[-3000:]
    assert "held-out accuracy" in output, output[-3000:]
    assert (clone / ".venv" / ".built-from-lock").read_text() == (ROOT / "locks" / "main.txt").read_text()

    # the race starts without this validation and reports the pair's recorded result (PAIR_HELDOUT) in its place
    before = read_metrics(tmp_path / "run" / "duet" / METRICS_FILE)[0]
    assert before[HELDOUT] == pytest.approx(PAIR_HELDOUT[HELDOUT], abs=1 / 96), before
    assert before[HELDOUT_TOKENS] == pytest.approx(PAIR_HELDOUT[HELDOUT_TOKENS], abs=1.0), before
