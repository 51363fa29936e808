"""What the driver knows about the Ray cluster a run uses: which nodes were alive when it started, so that a run
that fails because one of them died says so (and where to resume from) instead of ending on a worker's collective
error ("Connection closed by peer")."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from duet_verl.train.checkpointing import tracked_step

# Ray marks a node dead after missed health checks (~15 s at its defaults); a worker's collective fails at once.
NODE_DEATH_WAIT_S = 60.0


class NodeLostError(RuntimeError):
    """A Ray node the run was using died; the run stopped and can be resumed from its last checkpoint."""


class NodeWatch:
    """The alive nodes at the start of a run, to tell afterwards whether one of them died."""

    def __init__(self, nodes: Callable[[], list[dict]]):
        self._nodes = nodes
        self.started_with = {node["NodeID"]: node for node in nodes() if node["Alive"]}

    @property
    def several_nodes(self) -> bool:
        """With one node, the driver dies with it: there is nothing to wait for."""
        return len(self.started_with) > 1

    def lost_nodes(self, wait_s: float = NODE_DEATH_WAIT_S, poll_s: float = 1.0) -> list[dict]:
        """The nodes alive at the start that are dead now, waiting up to ``wait_s`` for Ray to notice (only a run
        on several nodes waits)."""
        deadline = time.monotonic() + (wait_s if self.several_nodes else 0.0)
        while True:
            dead = [node for node in self._nodes() if node["NodeID"] in self.started_with and not node["Alive"]]
            if dead or time.monotonic() >= deadline:
                return dead
            time.sleep(poll_s)


def node_lost_message(dead: list[dict], checkpoint_root: Path) -> str:
    """What happened, and how to go on from the last complete checkpoint under ``checkpoint_root``."""
    names = ", ".join(
        f"{node['NodeID'][:12]} ({node.get('NodeManagerAddress', '?')}: "
        f"{node.get('DeathReasonMessage') or 'no reason given'})"
        for node in dead
    )
    step = tracked_step(checkpoint_root)
    resume = (
        f"its last complete checkpoint is {checkpoint_root / f'global_step_{step}'} (step {step}); resubmit the same "
        "command on a healthy cluster and it resumes from there (trainer.resume_mode=auto)"
        if step is not None
        else f"no checkpoint was completed under {checkpoint_root}, so a resubmission starts from step 0"
    )
    return f"Ray lost {len(dead)} node(s) during the run: {names}. The run stopped; {resume}."


def use_token_auth_when_available() -> None:
    """Connect to a Ray cluster by address as ``ray start`` would: with token authentication when a token is at hand
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, which Ray 2.60 writes and then enables on the
    clusters it starts) unless ``RAY_AUTH_MODE`` says otherwise; a client without it is refused
    ("InvalidAuthToken"). Call it before this process imports Ray, which reads the mode once."""
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def wait_for_gpus(dashboard: str, gpus: int, timeout_s: float, poll_s: float = 5.0) -> int:
    """Wait until ``gpus`` GPUs have joined the Ray cluster whose dashboard is ``dashboard`` (``http://HEAD:8265``) or
    ``timeout_s`` passed, retrying while the head starts; returns how many did. verl counts the cluster's GPUs once,
    at start, so a launcher submits only after this. It asks the dashboard over HTTP (Ray's state API), not as a
    driver: a driver on a node must reach that node's raylet through ``/tmp/ray``, which a container step of its own
    (pyxis/enroot: a private ``/tmp``) does not see."""
    use_token_auth_when_available()  # before Ray reads its configuration, on import
    from ray.util.state import list_nodes

    deadline, seen = time.monotonic() + timeout_s, -1
    while True:
        try:
            nodes = list_nodes(address=dashboard, filters=[("state", "=", "ALIVE")], timeout=10)
            have = int(sum(node.resources_total.get("GPU", 0) for node in nodes))
        except Exception:  # the head and its dashboard still starting: no answer yet
            have = 0
        if have != seen:
            print(f"[duet] {have} of {gpus} GPUs have joined the Ray cluster at {dashboard}", flush=True)
            seen = have
        if have >= gpus or time.monotonic() >= deadline:
            return have
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m duet_verl.train.cluster",
        description="Wait until a Ray cluster has its GPUs (a launcher's step between `ray start` and the job).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--address", required=True, help="the head's dashboard, http://HEAD:8265")
    parser.add_argument("--gpus", type=int, required=True, help="the GPUs every node together brings")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    args = parser.parse_args(argv)
    have = wait_for_gpus(args.address, args.gpus, args.timeout)
    if have < args.gpus:
        print(f"error: only {have} of {args.gpus} GPUs joined the Ray cluster at {args.address} within "
              f"{args.timeout:.0f} s; the nodes' `ray start` output above says why", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
