"""DUET on a real two-node Ray cluster on one machine, submitted the way users submit it.

``ray.cluster_utils.Cluster`` starts a head and a worker node (two raylets, one logical GPU each) and the test
runs ``RAY_ADDRESS=<dashboard> bash recipes/run_duet_cpu_tiny.sh`` with ``NNODES=2 CPU_WORKERS=1``: the recipe's
own ``ray job submit`` path, the one the GPU recipes take. One cluster is shared by the module, in order:
- a job is stopped after its first checkpoint by ``python -m duet_verl.train.preemption`` (the KubeRay preStop
  hook: ``ray job stop`` for every running job, waiting for them): its driver gets SIGTERM mid-step, finishes the step,
  checkpoints it and exits 75; the same command, resubmitted, resumes from that checkpoint (step, λ, and the
  dataloader: no question is seen twice in the epoch) and finishes, with workers and rollout servers on both nodes
  (Ray's state API);
- the worker node's raylet is killed mid-run: the job fails within a bounded time saying which node was lost and
  where to resume; a new node joins and the same command resumes from the intact checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from duet_verl.train.checkpointing import checkpoint_problems, missing_checkpoint_files, tracked_step
from duet_verl.train.preemption import PREEMPTED_EXIT_CODE

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
    # RAY_JOB_STOP_WAIT_TIME_S: how long `ray job stop` lets a driver checkpoint before SIGKILL (Ray's default: 3 s),
    # read by the job supervisors the head node starts.
    old_env = dict(os.environ)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{old_env['PATH']}"
    os.environ["RAY_JOB_STOP_WAIT_TIME_S"] = str(JOB_TIMEOUT_S)
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


def questions_of(samples: Path) -> set[str]:
    return {json.loads(line)["question"] for line in samples.read_text().splitlines()}


def actor_nodes(cluster: LocalCluster, job_id: str) -> dict[str, set[str]]:
    """``{actor class: node ids}`` of a job's actors, from Ray's state API."""
    from ray.util.state import list_actors

    ray_job_id = cluster.client.get_job_info(job_id).job_id
    nodes: dict[str, set[str]] = {}
    for actor in list_actors(address=cluster.address, filters=[("job_id", "=", ray_job_id)], limit=10_000):
        nodes.setdefault(actor.class_name.rsplit(".", 1)[-1], set()).add(actor.node_id)
    return nodes


def test_stopped_job_resumes_from_its_last_checkpoint_on_two_nodes(cluster, tiny_dir, tmp_path, record_wall_time):
    from ray.job_submission import JobStatus

    root = tmp_path / "checkpoints"
    steps = 6  # of 8 per epoch (16 questions, 2 per step): every step should see new questions
    overrides = ("trainer.save_freq=2", f"trainer.rollout_data_dir={tmp_path / 'samples'}")
    start = time.perf_counter()
    stopped = cluster.submit(tmp_path, tiny_dir, steps, *overrides)
    wait_for_checkpoint(root, 2)
    stop = [sys.executable, "-m", "duet_verl.train.preemption", "--address", cluster.address]
    stop += ["--wait", str(JOB_TIMEOUT_S)]
    assert subprocess.run(stop, capture_output=True, text=True, timeout=JOB_TIMEOUT_S + 60).returncode == 0
    assert cluster.client.get_job_status(stopped) == JobStatus.STOPPED
    stopped_logs = cluster.logs(stopped)
    last = tracked_step(root)
    assert last is not None and 2 < last < steps, "the step in flight after the step-2 checkpoint is saved"
    assert f"[duet] SIGTERM: step {last} is done; writing its checkpoint" in stopped_logs, stopped_logs[-6000:]
    assert f"exiting with status {PREEMPTED_EXIT_CODE}" in stopped_logs
    assert_complete_checkpoint(root / f"global_step_{last}")
    assert checkpoint_problems(root / f"global_step_{last}") == []
    lambda_saved = json.loads((root / f"global_step_{last}" / "duet_state.json").read_text())["lambda_schedule"]

    resumed = cluster.submit(tmp_path, tiny_dir, steps, *overrides)
    status = cluster.finish(resumed)
    logs = cluster.logs(resumed)
    record_wall_time("DUET on a 2-node Ray cluster: stop + resume (6 steps)", time.perf_counter() - start)
    assert status == JobStatus.SUCCEEDED, logs[-6000:]
    folder, step, lam = resumed_from(logs)
    assert (folder, step) == (str(root / f"global_step_{last}"), last)
    assert lam == pytest.approx(lambda_saved["value"])
    assert f"step:{last + 1} -" in logs and f"step:{last} -" not in logs, "resumed runs start at the next step"
    assert tracked_step(root) == steps
    assert_complete_checkpoint(root / f"global_step_{steps}")
    # the dataloader went on where it stopped: a restarted one would replay step 1's questions
    questions = [questions_of(tmp_path / "samples" / f"duet_step_{step}.jsonl") for step in range(1, steps + 1)]
    assert all(len(q) == 2 for q in questions) and len(set().union(*questions)) == 2 * steps, questions

    head, worker = cluster.cluster.head_node.node_id, cluster.worker.node_id
    nodes = actor_nodes(cluster, resumed)
    assert nodes["WorkerDict"] == {head, worker}, nodes  # the fused M + m training workers, one per node
    assert nodes["HFRolloutServer"] == {head, worker}, nodes
    assert nodes["DuetTaskRunner"] == {head}, nodes  # the training loop stays beside the driver


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
