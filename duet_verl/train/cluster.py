"""What the driver knows about the Ray cluster a run uses: which nodes were alive when it started, so that a run
that fails because one of them died says so (and where to resume from) instead of ending on a worker's collective
error ("Connection closed by peer")."""

from __future__ import annotations

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
