"""``DuetTrainer._save_checkpoint`` publishes a checkpoint only when the trainer sees every worker's shard: on
several nodes without a shared filesystem it stops, leaving the last complete checkpoint the one resume uses.
The worker group is a stand-in that writes verl's FSDP checkpoint layout, some ranks onto "another node"."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from duet_verl.checkpointing import TRACKER_FILE, tracked_step
from duet_verl.trainer import DuetTrainer, ModelRole

WORLD_SIZE = 2


class WorkersOnNodes:
    """Writes what verl's FSDP checkpoint manager writes; ranks from ``visible_ranks`` on write elsewhere."""

    world_size = WORLD_SIZE

    def __init__(self, visible_ranks: int):
        self.visible_ranks = visible_ranks

    def save_checkpoint(self, local_path: str, hdfs_path, global_step: int, max_ckpt_to_keep) -> None:
        folder = Path(local_path)
        (folder / "huggingface").mkdir(parents=True)
        (folder / "huggingface" / "config.json").write_text("{}")
        (folder / "fsdp_config.json").write_text("{}")
        for rank in range(self.visible_ranks):
            for part in ("model", "optim", "extra_state"):
                (folder / f"{part}_world_size_{WORLD_SIZE}_rank_{rank}.pt").write_bytes(b"shard")


def trainer(root: Path, visible_ranks: int) -> DuetTrainer:
    """A DuetTrainer with only what ``_save_checkpoint`` reads (no Ray, no workers)."""
    model_block = {"actor": {"strategy": "fsdp2", "checkpoint": {"save_contents": ["model", "optimizer", "extra"]}}}
    config = OmegaConf.create({"trainer": {"default_local_dir": str(root)}, "actor_rollout_ref": model_block})
    duet = DuetTrainer.__new__(DuetTrainer)
    duet.config = config
    duet.large = ModelRole("large", config, actor_rollout_wg=WorkersOnNodes(visible_ranks))
    duet.small = ModelRole("small", config, actor_rollout_wg=WorkersOnNodes(visible_ranks))
    duet.train_dataloader = SimpleNamespace(state_dict=lambda: {"step": 4})
    duet.lambda_schedule = SimpleNamespace(state_dict=lambda: {"value": 0.3})
    return duet


def test_a_checkpoint_every_shard_of_is_visible_is_published(tmp_path):
    duet = trainer(tmp_path, visible_ranks=WORLD_SIZE)
    duet.global_steps = 4
    duet._save_checkpoint()
    assert tracked_step(tmp_path) == 4
    assert (tmp_path / "global_step_4" / "duet_state.json").is_file()
    assert not (tmp_path / "global_step_4.partial").exists()


def test_shards_on_another_nodes_disk_stop_the_run_and_publish_nothing(tmp_path):
    complete = trainer(tmp_path, visible_ranks=WORLD_SIZE)
    complete.global_steps = 2
    complete._save_checkpoint()

    duet = trainer(tmp_path, visible_ranks=1)  # rank 1 wrote onto its own node's disk
    duet.global_steps = 4
    with pytest.raises(RuntimeError, match="filesystem every node mounts") as error:
        duet._save_checkpoint()
    assert "large/actor/model_world_size_2_rank_1.pt" in str(error.value)
    assert "6 file(s)" in str(error.value)  # model, optim, extra_state of rank 1, for both models
    assert not (tmp_path / "global_step_4").exists() and (tmp_path / "global_step_4.partial").is_dir()
    assert (tmp_path / TRACKER_FILE).read_text() == "2", "resume still starts from the last complete checkpoint"
