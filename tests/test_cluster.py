"""The driver's node-loss report (duet_verl.train.cluster), on node tables shaped like ``ray.nodes()``."""

from __future__ import annotations

from duet_verl.train.checkpointing import TRACKER_FILE
from duet_verl.train.cluster import NodeWatch, node_lost_message


def node(node_id: str, alive: bool = True, reason: str = "") -> dict:
    return {"NodeID": node_id, "Alive": alive, "NodeManagerAddress": "10.0.0.2", "DeathReasonMessage": reason}


class Table:
    """``ray.nodes()`` over time: each call returns the next snapshot (the last one repeats)."""

    def __init__(self, *snapshots: list[dict]):
        self.snapshots = list(snapshots)
        self.calls = 0

    def __call__(self) -> list[dict]:
        self.calls += 1
        return self.snapshots[min(self.calls - 1, len(self.snapshots) - 1)]


def test_a_node_ray_marks_dead_later_is_reported():
    heartbeat = "health check failed due to missing too many heartbeats"
    table = Table(
        [node("head"), node("worker")],
        [node("head"), node("worker")],  # Ray has not noticed yet
        [node("head"), node("worker", alive=False, reason=heartbeat)],
    )
    dead = NodeWatch(table).lost_nodes(wait_s=5, poll_s=0)
    assert [n["NodeID"] for n in dead] == ["worker"]
    assert table.calls == 3


def test_nodes_dead_before_the_run_or_all_alive_are_not_reported():
    table = Table([node("head"), node("old", alive=False)], [node("head"), node("old", alive=False)])
    assert NodeWatch(table).lost_nodes(wait_s=0) == []


def test_a_single_node_run_does_not_wait():
    table = Table([node("head")])
    assert NodeWatch(table).lost_nodes(wait_s=3600, poll_s=3600) == []


def test_the_message_names_the_node_and_the_checkpoint_to_resume_from(tmp_path):
    dead = [node("a1b2c3d4e5f6a7b8", alive=False, reason="health check failed")]
    assert "no checkpoint was completed" in node_lost_message(dead, tmp_path)
    (tmp_path / TRACKER_FILE).write_text("4")
    message = node_lost_message(dead, tmp_path)
    assert "a1b2c3d4e5f6 (10.0.0.2: health check failed)" in message
    assert f"last complete checkpoint is {tmp_path / 'global_step_4'} (step 4)" in message
    assert "resubmit the same command" in message
