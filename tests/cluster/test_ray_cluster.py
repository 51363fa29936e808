"""DUET on a real two-node Ray cluster on one machine, submitted the way users submit it.

``ray.cluster_utils.Cluster`` starts a head and a worker node (two raylets, one logical GPU each) and the test
runs ``RAY_ADDRESS=<dashboard> bash recipes/run_duet_cpu_tiny.sh`` with ``NNODES=2 CPU_WORKERS=1``: the recipe's
own ``ray job submit`` path, the one the GPU recipes take. The worker node's raylet is killed mid-run: the job fails
within a bounded time saying which node was lost and where to resume; a new node joins and the same command resumes
from the intact checkpoint. A stop and its resume on two nodes run through the SLURM launcher (tests/cluster/
test_slurm.py).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from duet_verl.train.checkpointing import missing_checkpoint_files, tracked_step

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "run_duet_cpu_tiny.sh"
NODE = {"num_cpus": 8, "num_gpus": 1, "object_store_memory": 300 * 1024**2}
JOB_TIMEOUT_S = 420
SAVE_CONTENTS = ["model", "optimizer", "extra"]  # verl's default checkpoint.save_contents


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A head and a worker node on this machine; jobs go through the head's dashboard (``ray job submit``)."""

    def __init__(self):
        from ray.cluster_utils import Cluster
        from ray.job_submission import JobSubmissionClient

        port = free_port()
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={**NODE, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": port},
        )
        self.address = f"http://127.0.0.1:{port}"
        self.client = JobSubmissionClient(self.address)
        self.worker = self.add_worker()

    def add_worker(self):
        self.worker = self.cluster.add_node(**NODE)
        return self.worker

    def kill_worker(self) -> None:
        """SIGKILL the worker node's raylet and everything it started, as when a machine goes away."""
        self.cluster.remove_node(self.worker, allow_graceful=False)

    def submit(self, out_dir: Path, tiny_dir: Path, steps: int, *overrides: str) -> str:
        """The recipe with RAY_ADDRESS set, as a user submits it; returns the job's submission id."""
        job_id = f"duet-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "RAY_ADDRESS": self.address,
            "RAY_NO_WAIT": "1",
            "RAY_SUBMISSION_ID": job_id,
            "NNODES": "2",
            "CPU_WORKERS": "1",
            "STEPS": str(steps),
            "TINY_DIR": str(tiny_dir),
            "OUT_DIR": str(out_dir),
        }
        proc = subprocess.run(["bash", str(RECIPE), *overrides], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return job_id

    def wait(self, job_id: str, until, timeout: float = JOB_TIMEOUT_S, poll: float = 0.5):
        """Poll until ``until(status)`` holds; returns the status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.client.get_job_status(job_id)
            if until(status):
                return status
            time.sleep(poll)
        raise AssertionError(f"job {job_id} still {status} after {timeout} s:\n{self.logs(job_id)[-6000:]}")

    def finish(self, job_id: str, timeout: float = JOB_TIMEOUT_S):
        return self.wait(job_id, lambda status: status.is_terminal(), timeout)

    def logs(self, job_id: str) -> str:
        return self.client.get_job_logs(job_id)


@pytest.fixture(scope="module")
def cluster():
    # The job's `python` is the one on the raylets' PATH: this environment's, as on a node where `ray start` ran
    # from it.
    old_env = dict(os.environ)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{old_env['PATH']}"
    local = LocalCluster()
    try:
        yield local
    finally:
        local.cluster.shutdown()
        os.environ.clear()
        os.environ.update(old_env)


@pytest.fixture(scope="module")
def tiny_dir(tiny_assets) -> Path:
    return tiny_assets["tokenizer"].parent


def wait_for_checkpoint(root: Path, at_least: int, timeout: float = JOB_TIMEOUT_S) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = tracked_step(root)
        if step is not None and step >= at_least:
            return step
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint >= {at_least} under {root} after {timeout} s")


def assert_complete_checkpoint(folder: Path, world_size: int = 2) -> None:
    assert (folder / "duet_state.json").is_file() and (folder / "data.pt").is_file()
    for model in ("large", "small"):
        assert missing_checkpoint_files(folder / model / "actor", SAVE_CONTENTS, world_size) == [], (folder, model)


def resumed_from(logs: str) -> tuple[str, int, float]:
    match = re.search(r"\[duet\] resumed from (\S+) at step (\d+), lambda=(\S+)", logs)
    assert match, logs[-6000:]
    return match.group(1), int(match.group(2)), float(match.group(3))


def test_lost_node_fails_the_job_and_a_new_cluster_resumes(cluster, tiny_dir, tmp_path, record_wall_time):
    from ray.job_submission import JobStatus

    root = tmp_path / "checkpoints"
    steps = 6
    job = cluster.submit(tmp_path, tiny_dir, steps, "trainer.save_freq=2")
    wait_for_checkpoint(root, 2)
    cluster.kill_worker()
    killed = time.monotonic()
    status = cluster.finish(job, timeout=240)
    failed_after = time.monotonic() - killed
    record_wall_time("DUET on a 2-node Ray cluster: a node lost -> job failed", failed_after)
    logs = cluster.logs(job)
    assert status == JobStatus.FAILED, logs[-6000:]
    assert failed_after < 180, f"the job took {failed_after:.0f} s to fail after its node was lost"
    last = tracked_step(root)
    assert last is not None and last < steps
    assert "Ray lost 1 node(s) during the run" in logs, logs[-6000:]
    assert f"last complete checkpoint is {root / f'global_step_{last}'} (step {last})" in logs
    assert_complete_checkpoint(root / f"global_step_{last}")

    cluster.add_worker()
    resumed = cluster.submit(tmp_path, tiny_dir, steps, "trainer.save_freq=2")
    status = cluster.finish(resumed)
    logs = cluster.logs(resumed)
    assert status == JobStatus.SUCCEEDED, logs[-6000:]
    assert resumed_from(logs)[:2] == (str(root / f"global_step_{last}"), last)
    assert tracked_step(root) == steps
