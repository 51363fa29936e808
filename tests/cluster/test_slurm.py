"""The SLURM launcher, ``recipes/cluster/slurm_duet_qwen3.sbatch``, end to end on one machine under a fake ``srun``
that gives every step its own ``/tmp``, as pyxis/enroot do (a fresh tmpfs in a private mount namespace; the
image's software and ``--container-mounts`` bound back in). Nothing else is faked: the script starts a real two-node
Ray cluster (two raylets, one logical GPU each), waits for its GPUs, submits ``run_duet_cpu_tiny.sh`` through the
recipe's launcher, takes SLURM's warning signal (USR1) after the first checkpoint, and requeues; the requeued
script starts a new cluster and the run resumes and finishes.

The stop is the one the KubeRay preStop hook makes (``python -m duet_verl.train.preemption``), so the test also
reads the stopped job as KubeRay's controller reads it (``GET /api/jobs/<id>``, field ``status``): FAILED with the
driver's exit code 75, which a RayJob's ``backoffLimit`` retries (``ray job stop`` would record STOPPED, which
KubeRay marks Complete and never retries).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from duet_verl.train.checkpointing import checkpoint_problems, tracked_step
from duet_verl.train.preemption import PREEMPTED_EXIT_CODE

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "recipes" / "cluster" / "slurm_duet_qwen3.sbatch"
STEPS = 8  # one epoch (16 questions, 2 per step): every step sees new questions
EXPERIMENT = "slurm_test"
TIMEOUT_S = 600

FAKE_SRUN = r"""#!/usr/bin/env bash
# srun under pyxis, on one machine: each step runs here in a private mount namespace with a fresh tmpfs on /tmp (as
# enroot mounts one), into which the "image" (FAKE_IMAGE_PATHS: the checkout and its virtualenv) and the
# --container-mounts are bound back. `ray start` also gets what a GPU node has and this machine lacks (8 logical CPUs)
# and, since both "nodes" share this machine's ports, its own dashboard-agent port.
echo "srun $*" >> "$FAKE_DIR/calls"
mounts=()
while [ $# -gt 0 ]; do
  case $1 in
    -w) shift 2 ;;
    --container-mounts=*)
      IFS=, read -r -a spec <<< "${1#*=}"
      for m in "${spec[@]}"; do mounts+=("${m%%:*}"); done
      shift ;;
    -*) shift ;;
    *) break ;;
  esac
done
if [ "$1 $2" = "hostname --ip-address" ]; then hostname -I; exit 0; fi  # this machine's: Ray maps 127.0.0.1 to it
if [ "$1 $2" = "ray start" ]; then
  port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  set -- "$@" --num-cpus=8 --object-store-memory=300000000 --dashboard-agent-listen-port="$port"
fi
keep=$(printf '%s:' "${mounts[@]}")$FAKE_IMAGE_PATHS
exec unshare --mount --propagation private bash -c '
  set -e
  outside=$(mktemp -d /dev/shm/fake-srun.XXXXXX)
  mount --bind /tmp "$outside"
  mount -t tmpfs tmpfs /tmp
  IFS=: read -r -a paths <<< "$1"
  for path in "${paths[@]}"; do
    case $path in /tmp/*) mkdir -p "$path"; mount --bind "$outside${path#/tmp}" "$path" ;; esac
  done
  umount -l "$outside" && rmdir "$outside"
  shift
  exec "$@"
' step "$keep" "$@"
"""
FAKE_SCONTROL = r"""#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_DIR/calls"
[ "$1" = show ] && printf 'node-a\nnode-b\n'
exit 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slurm(tiny_assets, tmp_path_factory):
    """A fake allocation: srun and scontrol on PATH, SHARED outside /tmp (the steps each have their own), the tiny
    models and data in SHARED as on a cluster's shared filesystem."""
    fake = tmp_path_factory.mktemp("fake_slurm")
    bin_dir = fake / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    shared = Path(tempfile.mkdtemp(prefix="duet-slurm-", dir="/var/tmp"))
    shutil.copytree(tiny_assets["tokenizer"].parent, shared / "tiny")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "FAKE_DIR": str(fake),
        "FAKE_IMAGE_PATHS": f"{ROOT}:{sys.prefix}",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "node-[a-b]",
        "SLURM_GPUS_ON_NODE": "1",
        "SHARED": str(shared),
        "EXPERIMENT": EXPERIMENT,
        "RECIPE": str(ROOT / "recipes" / "run_duet_cpu_tiny.sh"),
        "RAY_PORT": str(free_port()),
        "DASHBOARD_PORT": str(free_port()),
        "TINY_DIR": str(shared / "tiny"),
        "STEPS": str(STEPS),
        "CPU_WORKERS": "1",
    }
    yield env, fake, shared
    shutil.rmtree(shared, ignore_errors=True)


def run_script(env: dict, fake: Path, restart: int, warn_after_step: int | None) -> tuple[int, str, dict]:
    """The batch script, as SLURM runs it; USR1 (``--signal=B:USR1@900``) once a checkpoint of
    ``warn_after_step`` is published. Returns its exit status, its output and its Ray job's status (read before the
    allocation's steps, Ray among them, end with it)."""
    root = Path(env["SHARED"]) / "duet_runs" / EXPERIMENT / "checkpoints"
    overrides = ["trainer.save_freq=1", f"trainer.rollout_data_dir={Path(env['SHARED']) / 'samples'}"]
    log = fake / f"slurm-{restart}.out"
    with log.open("w") as out:  # a file, not a pipe: Ray's daemons would hold a pipe open
        script = subprocess.Popen(["bash", str(SCRIPT), *overrides], env={**env, "SLURM_RESTART_COUNT": str(restart)},
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while warn_after_step is not None and script.poll() is None and time.monotonic() < deadline:
            if (tracked_step(root) or 0) >= warn_after_step:
                script.send_signal(signal.SIGUSR1)
                break
            time.sleep(0.2)
        script.wait(timeout=max(1.0, deadline - time.monotonic()))
        status = job_status(env, f"duet-4242-{restart}")
    finally:
        os.killpg(script.pid, signal.SIGTERM)  # SLURM ends the allocation's steps: `ray start --block` stops Ray
        time.sleep(5)
        os.killpg(script.pid, signal.SIGKILL)
    return script.returncode, log.read_text(), status


def job_status(env: dict, job_id: str) -> dict:
    """The job as KubeRay's RayJob controller reads it: GET <dashboard>/api/jobs/<id>, with the allocation's Ray
    token (the script makes one: Ray refuses the dashboard's API without it once the cluster has token auth)."""
    token = (Path(env["SHARED"]) / ".ray_auth" / env["SLURM_JOB_ID"]).read_text()
    host = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()[0]
    request = urllib.request.Request(f"http://{host}:{env['DASHBOARD_PORT']}/api/jobs/{job_id}",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_sbatch_script_under_pyxis_trains_takes_the_warning_requeues_and_resumes(slurm, record_wall_time):
    env, fake, shared = slurm
    root = shared / "duet_runs" / EXPERIMENT / "checkpoints"
    start = time.perf_counter()
    code, output, stopped = run_script(env, fake, restart=0, warn_after_step=1)
    calls = (fake / "calls").read_text()
    assert code == PREEMPTED_EXIT_CODE, output[-6000:]
    assert "joined the Ray cluster" in output and "2 of 2 GPUs" in output, output[-6000:]
    assert "asking the run to finish its step and checkpoint" in output
    assert calls.rstrip().endswith("scontrol requeue 4242"), calls
    assert all("--container-name=duet-4242" in line for line in calls.splitlines() if line.startswith("srun")), calls
    # what KubeRay's controller reads: FAILED, the driver's own exit 75 (a retry), not STOPPED (a completed RayJob)
    assert (stopped["status"], stopped["driver_exit_code"]) == ("FAILED", PREEMPTED_EXIT_CODE), stopped
    last = tracked_step(root)
    assert last is not None and 1 < last < STEPS, "the step in flight when the stop came is saved"
    assert checkpoint_problems(root / f"global_step_{last}") == []
    lambda_saved = json.loads((root / f"global_step_{last}" / "duet_state.json").read_text())["lambda_schedule"]

    code, output, finished = run_script(env, fake, restart=1, warn_after_step=None)
    record_wall_time("DUET under the SLURM script (fake srun, own /tmp per step), 2 nodes: warning + requeue + resume "
                     f"({STEPS} steps)", time.perf_counter() - start)  # fmt: skip
    assert code == 0, output[-6000:]
    assert (finished["status"], finished["driver_exit_code"]) == ("SUCCEEDED", 0), finished
    assert (fake / "calls").read_text().count("scontrol requeue") == 1, "a finished run is not requeued"
    assert f"[duet] resumed from {root / f'global_step_{last}'} at step {last}, lambda={lambda_saved['value']}" in (
        output
    ), output[-6000:]
    assert f"step:{last + 1} -" in output and f"step:{last} -" not in output, "resumed runs start at the next step"
    assert tracked_step(root) == STEPS
    # the dataloader went on where it stopped: a restarted one would replay step 1's questions
    samples = shared / "samples"
    questions = [
        {json.loads(line)["question"] for line in (samples / f"duet_step_{step}.jsonl").read_text().splitlines()}
        for step in range(1, STEPS + 1)
    ]
    assert all(len(q) == 2 for q in questions) and len(set().union(*questions)) == 2 * STEPS, questions
