"""Checkpoint bookkeeping of a DUET run that needs no Ray or workers: which folders to prune, and how to put the
dataloader back where an uninterrupted run would be.

A DUET checkpoint is ``global_step_N/`` (both models, ``data.pt``, ``duet_state.json``), written as
``global_step_N.partial/`` and renamed when complete; ``latest_checkpointed_iteration.txt`` names the step to
resume from and is written last.
"""

from __future__ import annotations

import re
from pathlib import Path

TRACKER_FILE = "latest_checkpointed_iteration.txt"
_STEP_FOLDER = re.compile(r"global_step_(\d+)")


def complete_checkpoints(root: Path) -> dict[int, Path]:
    """``{step: folder}`` of the published (renamed) checkpoints under ``root``; ``.partial`` ones are not."""
    if not root.is_dir():
        return {}
    found = {}
    for folder in root.iterdir():
        match = _STEP_FOLDER.fullmatch(folder.name)
        if match and folder.is_dir():
            found[int(match.group(1))] = folder
    return found


def tracked_step(root: Path) -> int | None:
    """The step ``latest_checkpointed_iteration.txt`` points at, or None without one."""
    tracker = root / TRACKER_FILE
    return int(tracker.read_text().strip()) if tracker.is_file() else None


def stale_checkpoints(root: Path, keep: int | None) -> list[Path]:
    """Published checkpoints beyond the newest ``keep`` (None or <= 0: keep all), oldest first.

    Never the one the tracker file points at, and never one newer than it: a checkpoint is only counted once
    it is recorded, so an interrupted save cannot push out the last one a resume would use.
    """
    if keep is None or keep <= 0:
        return []
    tracked = tracked_step(root)
    if tracked is None:
        return []
    recorded = sorted(step for step in complete_checkpoints(root) if step <= tracked)
    kept = set(recorded[-keep:]) | {tracked}
    return [root / f"global_step_{step}" for step in recorded if step not in kept]


def restore_dataloader(dataloader, state: dict, global_steps: int) -> None:
    """Load a ``StatefulDataLoader`` state saved after ``global_steps`` steps so that the next ``iter()`` yields
    exactly what an uninterrupted run would.

    A state saved after an epoch's last batch resumes into an empty iteration that closes that epoch (torchdata's
    behaviour); the next one starts the following epoch with the sampler's restored generator. At an epoch
    boundary that empty iteration is consumed here, so the caller's next epoch is the right one.
    """
    dataloader.load_state_dict(state)
    if global_steps % len(dataloader) == 0:
        leftover = next(iter(dataloader), None)
        if leftover is not None:
            raise RuntimeError(
                f"the dataloader state saved at step {global_steps} (an epoch boundary: {len(dataloader)} batches "
                "per epoch) still had batches to give; was the dataset or data.train_batch_size changed?"
            )


# verl's FSDP checkpoint (verl/utils/checkpoint/fsdp_checkpoint_manager.py): every rank writes one file per saved
# part; rank 0 also writes fsdp_config.json and huggingface/ (config and tokenizer, plus the weights for hf_model).
_SHARD_FILES = {"model": "model", "optimizer": "optim", "extra": "extra_state"}


def missing_checkpoint_files(actor_dir: Path, save_contents, world_size: int) -> list[str]:
    """The files of one model's FSDP checkpoint in ``actor_dir`` that this process cannot see, relative to it.

    On several nodes each worker writes its shard on its own node; the trainer only sees them all when
    ``actor_dir`` is on a filesystem every node mounts. Publishing without them would leave a checkpoint that
    cannot be resumed.
    """
    expected = ["fsdp_config.json", "huggingface/config.json"]
    for part, prefix in _SHARD_FILES.items():
        if part in save_contents:
            expected += [f"{prefix}_world_size_{world_size}_rank_{rank}.pt" for rank in range(world_size)]
    missing = [name for name in expected if not (actor_dir / name).is_file()]
    if "hf_model" in save_contents and not any((actor_dir / "huggingface").glob("*.safetensors")):
        missing.append("huggingface/*.safetensors")
    return missing


def shared_filesystem_error(partial: Path, missing: dict[str, list[str]], host: str) -> str:
    """The message for a checkpoint whose shards the trainer cannot see: ``missing`` maps each model's actor
    folder (relative to ``partial``) to the files it lacks."""
    files = [f"{folder}/{name}" for folder, names in missing.items() for name in names]
    return (
        f"the checkpoint in {partial} is incomplete as the trainer on {host} sees it: {len(files)} file(s) the "
        f"workers wrote are not there ({', '.join(files[:4])}{', …' if len(files) > 4 else ''}). On several nodes, "
        "trainer.default_local_dir must be on a filesystem every node mounts at the same path (NFS, Lustre, a "
        "cloud file share): each worker writes its shard on its own node. The checkpoint was not published; "
        "the last complete one is untouched (docs/clusters.md, 'Checkpoints')."
    )
