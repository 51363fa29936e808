"""Checkpoint retention and dataloader resume, on real torchdata dataloaders and folders (no Ray)."""

from __future__ import annotations

import pytest
import torch
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import RandomSampler

from duet_verl.train.checkpointing import (
    TRACKER_FILE,
    missing_checkpoint_files,
    restore_dataloader,
    shared_filesystem_error,
    stale_checkpoints,
)

NUM_ROWS, BATCH = 8, 2  # 4 steps per epoch


def shuffled_loader() -> StatefulDataLoader:
    """Built as verl's trainer builds the train dataloader (``create_rl_sampler`` with a seed, drop_last)."""
    generator = torch.Generator()
    generator.manual_seed(1)
    rows = list(range(NUM_ROWS))
    return StatefulDataLoader(rows, batch_size=BATCH, drop_last=True, sampler=RandomSampler(rows, generator=generator))


def batches_of(loader: StatefulDataLoader, epochs: int) -> list[list[int]]:
    return [batch.tolist() for _ in range(epochs) for batch in loader]


@pytest.mark.parametrize("saved_at_step", [2, 4, 6, 8])  # mid-epoch and at both epoch boundaries
def test_resume_continues_the_uninterrupted_order(saved_at_step):
    epochs = 3
    uninterrupted = batches_of(shuffled_loader(), epochs)

    loader, step, state = shuffled_loader(), 0, None
    for _ in range(epochs):  # the trainer saves inside its loop, right after a step
        for _ in loader:
            step += 1
            if step == saved_at_step:
                state = loader.state_dict()
        if state is not None:
            break

    resumed = shuffled_loader()
    restore_dataloader(resumed, state, saved_at_step)
    steps_per_epoch = NUM_ROWS // BATCH
    first_epoch = saved_at_step // steps_per_epoch  # the trainer's range(start_epoch, total_epochs)
    after = batches_of(resumed, epochs - first_epoch)
    assert after == uninterrupted[saved_at_step:]


def test_restore_refuses_a_state_that_does_not_match_the_step():
    loader = shuffled_loader()
    for step, _ in enumerate(loader, start=1):
        if step == 2:
            state = loader.state_dict()
            break
    with pytest.raises(RuntimeError, match="epoch boundary"):
        restore_dataloader(shuffled_loader(), state, 4)


def publish(root, step: int, tracked: bool = True) -> None:
    (root / f"global_step_{step}").mkdir(parents=True)
    if tracked:
        (root / TRACKER_FILE).write_text(str(step))


def test_retention_keeps_the_newest_recorded_checkpoints(tmp_path):
    for step in (10, 20, 30, 40):
        publish(tmp_path, step)
    (tmp_path / "global_step_50.partial").mkdir()  # a save in progress
    assert stale_checkpoints(tmp_path, 2) == [tmp_path / "global_step_10", tmp_path / "global_step_20"]
    assert stale_checkpoints(tmp_path, None) == stale_checkpoints(tmp_path, 0) == []


def test_retention_never_removes_the_tracked_checkpoint(tmp_path):
    for step in (10, 20):
        publish(tmp_path, step)
    publish(tmp_path, 30, tracked=False)  # renamed but not yet recorded (the save was interrupted)
    publish(tmp_path, 40, tracked=False)
    assert stale_checkpoints(tmp_path, 1) == [tmp_path / "global_step_10"]
    assert stale_checkpoints(tmp_path / "missing", 1) == []


def fsdp_checkpoint(folder, world_size: int, parts=("model", "optim", "extra_state"), ranks=None) -> None:
    """The files verl's FSDP checkpoint manager writes for one model (empty stand-ins)."""
    (folder / "huggingface").mkdir(parents=True)
    (folder / "huggingface" / "config.json").write_text("{}")
    (folder / "fsdp_config.json").write_text("{}")
    for rank in range(world_size) if ranks is None else ranks:
        for part in parts:
            (folder / f"{part}_world_size_{world_size}_rank_{rank}.pt").touch()


def test_every_rank_shard_present_is_complete(tmp_path):
    fsdp_checkpoint(tmp_path, 2)
    assert missing_checkpoint_files(tmp_path, ["model", "optimizer", "extra"], 2) == []


def test_shards_written_on_another_node_are_missing(tmp_path):
    fsdp_checkpoint(tmp_path, 4, ranks=[0, 1])  # ranks 2 and 3 wrote onto their own node's disk
    missing = missing_checkpoint_files(tmp_path, ["model", "optimizer", "extra"], 4)
    assert missing == [f"{part}_world_size_4_rank_{rank}.pt" for part in ("model", "optim", "extra_state")
                       for rank in (2, 3)]  # fmt: skip
    assert missing_checkpoint_files(tmp_path, ["model"], 4) == ["model_world_size_4_rank_2.pt",
                                                                "model_world_size_4_rank_3.pt"]  # fmt: skip


def test_rank_zero_files_and_hf_weights_are_required(tmp_path):
    (tmp_path / "huggingface").mkdir()
    assert missing_checkpoint_files(tmp_path, ["hf_model"], 2) == [
        "fsdp_config.json", "huggingface/config.json", "huggingface/*.safetensors",
    ]  # fmt: skip


def test_the_error_says_what_is_missing_and_what_to_do(tmp_path):
    missing = {"large/actor": ["model_world_size_2_rank_1.pt"], "small/actor": ["optim_world_size_2_rank_1.pt"]}
    message = shared_filesystem_error(tmp_path / "global_step_4.partial", missing, "head-0")
    assert "trainer on head-0" in message and "2 file(s)" in message
    assert "large/actor/model_world_size_2_rank_1.pt" in message
    assert "filesystem every node mounts" in message and "was not published" in message
