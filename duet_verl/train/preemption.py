"""Stopping a run when the scheduler asks, without losing the step in flight (docs/clusters.md, "Preemption").

A scheduler stops a run with a signal to the driver (``python -m duet_verl.main``): SIGTERM from Kubernetes or
``ray job stop``, SIGINT from Ctrl-C, a warning signal such as SIGUSR1 from SLURM (``--signal=B:USR1@600``). The
driver's handler only records the request in a :class:`StopRequest` actor; the trainer reads it after each step,
writes a checkpoint through the same atomic publish as periodic saves, and returns ``PREEMPTED``; the driver then
exits with :data:`PREEMPTED_EXIT_CODE`, on which the launchers requeue.

The step in flight is finished, not abandoned: m is updated before M and the dataloader has moved on, so the
state after the step is the only consistent one to save besides the last checkpoint, and every rollout of the
step (most of its time) would otherwise be lost. A scheduler's warning must therefore leave a step and a save.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): stopped on request, resumable; the launchers requeue on it
COMPLETED, PREEMPTED = "completed", "preempted"
_UNCATCHABLE = {"SIGKILL", "SIGSTOP"}


def signal_problems(names: Iterable[str]) -> list[str]:
    """Why each of ``names`` cannot be a stop signal (empty when all can)."""
    problems = []
    for name in names:
        if not isinstance(name, str) or not isinstance(getattr(signal, name, None), signal.Signals):
            problems.append(f"{name!r} is not a signal name (e.g. SIGTERM, SIGUSR1)")
        elif name in _UNCATCHABLE:
            problems.append(f"{name} cannot be caught, so it cannot ask for a checkpoint")
    return problems


class StopRequest:
    """Whether, and why, the driver was asked to stop; a Ray actor (``ray.remote(StopRequest)``) the trainer
    polls between steps."""

    def __init__(self):
        self._reason: str | None = None

    def request(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason

    def reason(self) -> str | None:
        return self._reason


class StopSignals:
    """The driver's handlers for ``names`` while the run lasts. The first signal is recorded (:meth:`forward`
    passes it on to the trainer from the driver's loop: a handler must not call into Ray); later ones are only
    reported, since the checkpoint being written is published atomically either way."""

    def __init__(self, names: Iterable[str]):
        self.signals = [getattr(signal, name) for name in names]
        self.received: str | None = None
        self._forwarded = False
        self._previous: dict[int, object] = {}

    def _handle(self, number: int, frame) -> None:
        name = signal.Signals(number).name
        if self.received is None:
            self.received = name
            message = (
                f"[duet] {name} received: the step in flight finishes, a checkpoint is written, then the run exits "
                f"with status {PREEMPTED_EXIT_CODE}; the same command resumes it\n"
            )
        else:
            message = (
                f"[duet] {name} received while stopping for {self.received}: the checkpoint is still being "
                "written; a kill now leaves the previous checkpoint as the latest\n"
            )
        os.write(sys.stderr.fileno(), message.encode())  # print() is not safe in a handler (reentrant writes)

    def forward(self, stop_request) -> None:
        """Pass a received signal on to the trainer's :class:`StopRequest` (once)."""
        if self.received is not None and not self._forwarded:
            stop_request.request.remote(self.received)
            self._forwarded = True

    def __enter__(self) -> StopSignals:
        for number in self.signals:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def stop_jobs(address: str, wait_s: float, poll_s: float = 2.0) -> list[str]:
    """Ask every running job on the Ray cluster at ``address`` (its dashboard) to stop, as ``ray job stop``
    does (SIGTERM to the job's driver), and wait up to ``wait_s`` for all of them to end; returns the ids of those
    still running then. The head node's ``RAY_JOB_STOP_WAIT_TIME_S`` must be as long, or Ray kills a driver 3 s
    after the signal.

    For a pod's preStop hook (recipes/cluster/kuberay_duet_qwen3.yaml): Kubernetes signals the pod's containers
    only after the hook returns, so the hook must wait while the driver finishes its step and checkpoints.
    """
    import time

    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    running = [job.submission_id for job in client.list_jobs() if job.status == JobStatus.RUNNING]
    for job_id in running:
        client.stop_job(job_id)
        print(f"[duet] asked job {job_id} to stop", flush=True)
    deadline = time.monotonic() + wait_s
    while running and time.monotonic() < deadline:
        running = [job_id for job_id in running if not client.get_job_status(job_id).is_terminal()]
        time.sleep(poll_s)
    if running:
        print(f"[duet] still running after {wait_s:.0f} s: {', '.join(running)}", file=sys.stderr, flush=True)
    return running


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="Ask the DUET jobs on a Ray cluster to checkpoint and stop, and wait for them (a preStop hook)."
    )
    parser.add_argument("--address", default="http://127.0.0.1:8265", help="the Ray dashboard (default: this node)")
    parser.add_argument("--wait", type=float, default=840.0, help="seconds to wait for the jobs to end (default 840)")
    args = parser.parse_args(argv)
    return 1 if stop_jobs(args.address, args.wait) else 0


if __name__ == "__main__":
    sys.exit(main())
