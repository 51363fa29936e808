"""Stopping a run when the scheduler asks, without losing the step in flight (docs/clusters.md, "Preemption").

A run is asked to stop by a signal to the driver (``python -m duet_verl.main``): SIGTERM from ``kill`` or ``ray
job stop``, SIGINT from Ctrl-C, a warning signal such as SIGUSR1; or, from any node of its Ray cluster, by
``python -m duet_verl.train.preemption`` (the KubeRay preStop hook, the SLURM script's warning trap), which calls
the run's named :class:`StopRequest` actor. The driver's handler only records a signal in that actor; the trainer
reads it after each step (and after a validation), writes a checkpoint through the same atomic publish as
periodic saves, and returns ``PREEMPTED``; the driver then exits with :data:`PREEMPTED_EXIT_CODE`, on which the
launchers requeue.

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
            print(f"[duet] stop requested ({reason}): the step in flight finishes, then a checkpoint", flush=True)

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


STOP_NAMESPACE = "duet"  # the Ray namespace of every run's StopRequest actor, named STOP_ACTOR_PREFIX + job id
STOP_ACTOR_PREFIX = "stop-request-"


def stop_actor_options(job_id: str) -> dict:
    """Where the driver puts its :class:`StopRequest`: named, so that a scheduler's hook on any node can find it."""
    return {"name": f"{STOP_ACTOR_PREFIX}{job_id}", "namespace": STOP_NAMESPACE}


def _stop_actors() -> list[str]:
    import ray

    return sorted(
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["namespace"] == STOP_NAMESPACE and entry["name"].startswith(STOP_ACTOR_PREFIX)
    )


def stop_runs(address: str, wait_s: float, reason: str = "preStop", poll_s: float = 2.0) -> list[str]:
    """Ask every DUET run on the Ray cluster at ``address`` (``auto``: this node's cluster; or ``HOST:PORT``, the
    head's GCS port) to stop as a stop signal would: the step in flight finishes, a checkpoint is written and the
    driver exits with :data:`PREEMPTED_EXIT_CODE`. Waits up to ``wait_s`` for each run to end (its request actor
    goes with its driver); returns the runs still going then.

    Unlike ``ray job stop``, which Ray records as STOPPED whatever the driver's exit code, the driver ends the job
    itself, so Ray records it FAILED with exit code 75: what KubeRay's ``backoffLimit`` retries, and what the SLURM
    launcher requeues on (docs/clusters.md, "Preemption"). For a pod's preStop hook and a batch script's trap.
    """
    import time

    from duet_verl.train.cluster import use_token_auth_when_available

    use_token_auth_when_available()  # before Ray reads its configuration, on import
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        running = _stop_actors()
        if not running:
            print("[duet] no DUET run on this Ray cluster: nothing to stop", flush=True)
        for name in running:
            ray.get(ray.get_actor(name, namespace=STOP_NAMESPACE).request.remote(reason))
            print(f"[duet] asked run {name.removeprefix(STOP_ACTOR_PREFIX)} to checkpoint and stop", flush=True)
        deadline = time.monotonic() + wait_s
        while running and time.monotonic() < deadline:
            time.sleep(poll_s)
            running = [name for name in running if name in _stop_actors()]
        if running:
            print(f"[duet] still running after {wait_s:.0f} s: {', '.join(running)}", file=sys.stderr, flush=True)
        return running
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m duet_verl.train.preemption",
        description="Ask the DUET runs on a Ray cluster to finish their step, checkpoint and exit with status "
        f"{PREEMPTED_EXIT_CODE}, and wait for them (a pod's preStop hook, a batch script's trap).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--address", default="auto", help="the Ray cluster: auto (this node's) or HOST:PORT (GCS)")
    parser.add_argument("--wait", type=float, default=840.0, help="seconds to wait for the runs to end (0: ask only)")
    parser.add_argument("--reason", default="preStop", help="the reason the runs log")
    args = parser.parse_args(argv)
    if args.address.startswith(("http://", "https://")):
        parser.error(f"--address {args.address}: the Ray cluster's address (auto, or HOST:6379), not its dashboard")
    return 1 if stop_runs(args.address, args.wait, args.reason) else 0


if __name__ == "__main__":
    sys.exit(main())
