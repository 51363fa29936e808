"""``DuetTrainer._save_checkpoint`` publishes a checkpoint only when the trainer sees every worker's shard: on
several nodes without a shared filesystem it stops, leaving the last complete checkpoint the one resume uses.
The worker group is a stand-in that writes verl's FSDP checkpoint layout, some ranks onto "another node".

Checkpoints published this way are then damaged as storage faults damage them (a truncated or missing shard, a
tracker naming a deleted folder, ...): ``choose_resume`` refuses each before anything loads, naming the file and
the newest intact checkpoint, or falls back to that one with ``duet.damaged_checkpoint=last_intact``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from duet_verl.train.checkpointing import (
    MANIFEST_FILE,
    TRACKER_FILE,
    DamagedCheckpointError,
    choose_resume,
    tracked_step,
)
from duet_verl.train.trainer import DuetTrainer
from duet_verl.train.verl_adapter import ModelRole

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


# ---------------------------------------------------------------------------------------------- damaged checkpoints
def published(root: Path, *steps: int) -> dict[int, Path]:
    """Checkpoints at ``steps`` through the real publish (manifest included); the tracker names the last."""
    duet = trainer(root, visible_ranks=WORLD_SIZE)
    for step in steps:
        duet.global_steps = step
        duet._save_checkpoint()
    return {step: root / f"global_step_{step}" for step in steps}


def test_an_intact_checkpoint_is_resumed_and_its_manifest_lists_every_file(tmp_path):
    folders = published(tmp_path, 2, 4)
    assert choose_resume(tmp_path, "auto", None, "error") == folders[4]
    manifest = json.loads((folders[4] / MANIFEST_FILE).read_text())["files"]
    on_disk = {str(p.relative_to(folders[4])) for p in folders[4].rglob("*") if p.is_file()} - {MANIFEST_FILE}
    assert set(manifest) == on_disk and "large/actor/model_world_size_2_rank_1.pt" in manifest
    assert choose_resume(tmp_path, "disable", None, "error") is None
    assert choose_resume(tmp_path / "fresh", "auto", None, "error") is None


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def drop_tracked_folder(root: Path) -> None:
    shutil.rmtree(root / "global_step_4")


NEWEST = "global_step_4"  # the checkpoint each case damages
DAMAGE = {
    "truncated model shard": (lambda root: truncate(root / "global_step_4/small/actor/model_world_size_2_rank_1.pt"),
                              "global_step_4/small/actor/model_world_size_2_rank_1.pt has 4 bytes; 5 were written"),
    "missing optimizer shard": (lambda root: (root / "global_step_4/large/actor/optim_world_size_2_rank_0.pt").unlink(),
                                "global_step_4/large/actor/optim_world_size_2_rank_0.pt is missing"),
    "missing dataloader state": (lambda root: (root / "global_step_4/data.pt").unlink(), "global_step_4/data.pt"),
    "empty duet state": (lambda root: (root / NEWEST / "duet_state.json").write_text(""),
                         f"{NEWEST}/duet_state.json has 0 bytes"),
    "missing model": (lambda root: shutil.rmtree(root / NEWEST / "small"), f"{NEWEST}/small/actor is missing"),
    "tracker naming a deleted folder": (drop_tracked_folder, "global_step_4 does not exist"),
    "garbled tracker": (lambda root: (root / TRACKER_FILE).write_text("\x00\x00"), "names no step"),
    "deleted tracker": (lambda root: (root / TRACKER_FILE).unlink(), "is missing, but 2 checkpoint(s) are published"),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_stops_resume_naming_the_file_and_the_intact_one(tmp_path, damage):
    folders = published(tmp_path, 2, 4)
    make_damage, problem = DAMAGE[damage]
    make_damage(tmp_path)
    with pytest.raises(DamagedCheckpointError) as error:
        choose_resume(tmp_path, "auto", None, "error")
    message = str(error.value)
    assert problem in message and "Nothing was loaded" in message
    intact = folders[4] if damage in ("garbled tracker", "deleted tracker") else folders[2]
    assert f"The newest intact checkpoint is {intact}" in message and "duet.damaged_checkpoint=last_intact" in message


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_last_intact_sets_the_damaged_one_aside_and_resumes_from_the_intact_one(tmp_path, damage, capsys):
    folders = published(tmp_path, 2, 4)
    DAMAGE[damage][0](tmp_path)
    newest_ok = damage in ("garbled tracker", "deleted tracker")  # the folders are fine, only the tracker is not
    assert choose_resume(tmp_path, "auto", None, "last_intact") == (folders[4] if newest_ok else folders[2])
    assert "Resuming from" in capsys.readouterr().out
    if not newest_ok and damage != "tracker naming a deleted folder":
        assert not folders[4].exists() and (tmp_path / "global_step_4.damaged").is_dir()
        duet = trainer(tmp_path, visible_ranks=WORLD_SIZE)  # the resumed run saves on past it
        duet.global_steps = 3
        duet._save_checkpoint()
        assert choose_resume(tmp_path, "auto", None, "error") == tmp_path / "global_step_3"


def test_a_checkpoint_from_before_manifests_is_checked_for_its_parts(tmp_path):
    folders = published(tmp_path, 4)
    (folders[4] / MANIFEST_FILE).unlink()
    assert choose_resume(tmp_path, "auto", None, "error") == folders[4]
    (folders[4] / "data.pt").unlink()
    with pytest.raises(DamagedCheckpointError, match="data.pt is missing"):
        choose_resume(tmp_path, "auto", None, "error")


def test_without_an_intact_checkpoint_the_error_says_how_to_start_over(tmp_path):
    folders = published(tmp_path, 4)
    truncate(folders[4] / "data.pt")
    for mode in ("error", "last_intact"):
        with pytest.raises(DamagedCheckpointError, match="No intact checkpoint is left: trainer.resume_mode=disable"):
            choose_resume(tmp_path, "auto", None, mode)


def test_a_damaged_resume_path_is_refused_even_with_last_intact(tmp_path):
    folders = published(tmp_path, 2, 4)
    truncate(folders[2] / "large" / "actor" / "model_world_size_2_rank_0.pt")
    with pytest.raises(DamagedCheckpointError, match="model_world_size_2_rank_0.pt has 4 bytes"):
        choose_resume(tmp_path, "resume_path", str(folders[2]), "last_intact")
    assert choose_resume(tmp_path, "resume_path", str(folders[4]), "error") == folders[4]


def test_a_save_killed_mid_write_leaves_nothing_behind_after_the_next_publish_or_resume(tmp_path):
    """A preemption save killed mid-write at a step that is not a save step leaves ``global_step_N.partial``: the
    next publish (at another step) removes it, and so does the driver before a resume."""
    from duet_verl.train.main import _resolve_resume

    duet = trainer(tmp_path, visible_ranks=WORLD_SIZE)
    duet.global_steps = 2
    duet._save_checkpoint()
    killed = tmp_path / "global_step_3.partial" / "large" / "actor"  # the kill: step 3's save, half written
    killed.mkdir(parents=True)
    (killed / "model_world_size_2_rank_0.pt").write_bytes(b"half")
    duet.global_steps = 4
    duet._save_checkpoint()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["global_step_2", "global_step_4", TRACKER_FILE]

    (tmp_path / "global_step_5.partial").mkdir()
    config = OmegaConf.create({"trainer": {"default_local_dir": str(tmp_path), "resume_mode": "auto"}})
    _resolve_resume(config, SimpleNamespace(damaged_checkpoint="error"))
    assert not (tmp_path / "global_step_5.partial").exists()
    assert config.trainer.resume_from_path == str(tmp_path / "global_step_4")
