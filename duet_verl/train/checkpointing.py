"""A DUET run's checkpoints. The bookkeeping needs no Ray or workers (the driver checks a resume before Ray
starts): which folders to prune, whether a checkpoint is intact and which one a resume loads, and how to put the
dataloader back where an uninterrupted run would be. ``CheckpointPublishing`` is the trainer's save and load.

A DUET checkpoint is ``global_step_N/`` (both models, ``data.pt``, ``duet_state.json`` and ``manifest.json``, the
size of every other file), written as ``global_step_N.partial/`` and renamed when complete;
``latest_checkpointed_iteration.txt`` names the step to resume from and is written last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from pathlib import Path

import torch

TRACKER_FILE = "latest_checkpointed_iteration.txt"
MANIFEST_FILE = "manifest.json"
DAMAGED_SUFFIX = ".damaged"
DAMAGED_CHOICES = ("error", "last_intact")  # duet.damaged_checkpoint
_STEP_FOLDER = re.compile(r"global_step_(\d+)")
_REQUIRED = ("duet_state.json", "data.pt", "large/actor", "small/actor")


class DamagedCheckpointError(RuntimeError):
    """The checkpoint a resume would load is incomplete; nothing was loaded."""


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
    """The step ``latest_checkpointed_iteration.txt`` points at, or None without one (or with one that names no
    step: :func:`choose_resume` reports that)."""
    tracker = root / TRACKER_FILE
    if not tracker.is_file():
        return None
    text = tracker.read_text().strip()
    return int(text) if text.isdigit() else None


def write_manifest(folder: Path) -> None:
    """Record the size of every file under ``folder`` (a checkpoint about to be published) in its manifest."""
    sizes = {
        str(path.relative_to(folder)): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }
    (folder / MANIFEST_FILE).write_text(json.dumps({"files": sizes}, indent=1))


def checkpoint_problems(folder: Path) -> list[str]:
    """What is wrong with a published checkpoint: missing parts, and files missing or of another size than its
    manifest records (a truncated shard after a storage fault). Empty when it is intact. Sizes, not contents,
    are checked: reading every byte of a large model's shards would cost minutes at each resume. A checkpoint
    without a manifest (written before duet-verl recorded one) is checked for its parts only."""
    if not folder.is_dir():
        return [f"{folder} does not exist"]
    problems = [f"{folder / part} is missing" for part in _REQUIRED if not (folder / part).exists()]
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():  # published by a duet-verl that wrote no manifest: only its parts can be checked
        return problems
    try:
        sizes = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return problems + [f"{manifest} is not a readable manifest"]
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.stat().st_size != size:
            problems.append(f"{path} has {path.stat().st_size} bytes; {size} were written")
    return problems


def choose_resume(root: Path, resume_mode: str, resume_from_path: str | None, on_damaged: str) -> Path | None:
    """The checkpoint folder a run resumes from (None: from scratch), checked before anything loads.

    ``resume_mode`` is verl's (``disable``, ``auto``: the tracker's checkpoint under ``root``, ``resume_path``:
    ``resume_from_path``). A damaged checkpoint raises :class:`DamagedCheckpointError` naming what is wrong and
    the newest intact one; with ``on_damaged="last_intact"`` an ``auto`` resume instead sets the damaged folder
    aside (renamed ``*.damaged``, so later saves and pruning skip it) and returns the newest intact one. A
    ``resume_path`` the user named is never replaced.
    """
    if resume_mode == "disable":
        return None
    if resume_mode == "resume_path":
        folder = Path(resume_from_path).absolute()
        problems = checkpoint_problems(folder)
        if problems:
            raise DamagedCheckpointError(_damaged_message(folder, problems, _newest_intact(folder.parent, None)))
        return folder
    tracker = root / TRACKER_FILE
    published = complete_checkpoints(root)
    step = tracked_step(root)
    if step is None and not tracker.is_file():
        if not published:
            return None  # a fresh run
        problems = [f"{tracker} is missing, but {len(published)} checkpoint(s) are published under {root}"]
        damaged = None
    elif step is None:
        problems, damaged = [f"{tracker} names no step: {tracker.read_text()[:40]!r}"], None
    else:
        damaged = root / f"global_step_{step}"
        problems = checkpoint_problems(damaged)
        if not problems:
            return damaged
    intact = _newest_intact(root, step)
    if on_damaged != "last_intact" or intact is None:
        raise DamagedCheckpointError(_damaged_message(damaged or tracker, problems, intact))
    if damaged is not None and damaged.is_dir():
        os.replace(damaged, damaged.with_name(damaged.name + DAMAGED_SUFFIX))
        problems.append(f"it was moved aside to {damaged.name + DAMAGED_SUFFIX}")
    print(f"[duet] the newest checkpoint is damaged: {'; '.join(problems)}. Resuming from {intact} "
          "(duet.damaged_checkpoint=last_intact)", flush=True)  # fmt: skip
    return intact


def _newest_intact(root: Path, below: int | None) -> Path | None:
    """The newest intact published checkpoint under ``root`` (older than step ``below`` when given)."""
    for step in sorted(complete_checkpoints(root), reverse=True):
        if (below is None or step < below) and not checkpoint_problems(root / f"global_step_{step}"):
            return root / f"global_step_{step}"
    return None


def _damaged_message(what: Path, problems: list[str], intact: Path | None) -> str:
    fallback = (
        f"The newest intact checkpoint is {intact}: set duet.damaged_checkpoint=last_intact to resume from it "
        "(the damaged one is moved aside), or trainer.resume_mode=resume_path trainer.resume_from_path=<folder>."
        if intact is not None
        else "No intact checkpoint is left: trainer.resume_mode=disable starts the run from scratch."
    )
    return f"cannot resume from {what}: {'; '.join(problems)}. Nothing was loaded. {fallback}"


def remove_unpublished(root: Path) -> list[Path]:
    """Remove every ``global_step_N.partial/`` under ``root`` (called after a publish and before a resume, when no
    save is in progress): a save killed mid-write (a preemption whose grace period ran out) leaves one that no
    resume reads and no later save at another step replaces, ~100 GB for 8B + 0.6B. Returns what was removed."""
    if not root.is_dir():
        return []
    removed = [folder for folder in sorted(root.glob("global_step_*.partial")) if folder.is_dir()]
    for folder in removed:
        shutil.rmtree(folder)
        print(f"[duet] removed {folder}: a checkpoint whose save never finished", flush=True)
    return removed


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


class CheckpointPublishing:
    """The trainer's save and load, as a mixin of ``DuetTrainer`` (it provides ``config``, ``global_steps``, the
    roles ``large``/``small`` with their worker groups, ``train_dataloader`` and ``lambda_schedule``)."""

    def _checkpoint_root(self) -> Path:
        return Path(self.config.trainer.default_local_dir).absolute()

    def _save_checkpoint(self) -> None:
        """Write ``global_step_N/{large,small}/actor``, ``data.pt`` and ``duet_state.json`` into a ``.partial``
        folder, rename it when everything is on disk, then point the tracker file at it: an interrupted save is
        never found by resume."""
        root = self._checkpoint_root()
        final = root / f"global_step_{self.global_steps}"
        partial = root / f"global_step_{self.global_steps}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for role in (self.large, self.small):
            role.actor_rollout_wg.save_checkpoint(str(partial / role.name / "actor"), None, self.global_steps, None)
        self._check_shards_visible(partial)
        torch.save(self.train_dataloader.state_dict(), partial / "data.pt")
        state = {"global_step": self.global_steps, "lambda_schedule": self.lambda_schedule.state_dict()}
        (partial / "duet_state.json").write_text(json.dumps(state, indent=2))
        write_manifest(partial)  # every file's size, checked before a resume loads anything
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        tracker_tmp = root / f"{TRACKER_FILE}.tmp"
        tracker_tmp.write_text(str(self.global_steps))
        os.replace(tracker_tmp, root / TRACKER_FILE)
        print(f"[duet] saved checkpoint {final}", flush=True)
        remove_unpublished(root)
        for stale in stale_checkpoints(root, self.config.trainer.get("max_actor_ckpt_to_keep")):
            shutil.rmtree(stale)
            print(f"[duet] removed old checkpoint {stale} (trainer.max_actor_ckpt_to_keep)", flush=True)

    def _check_shards_visible(self, partial: Path) -> None:
        """Fail before publishing when this process cannot see every worker's shard (no shared filesystem)."""
        missing = {}
        for role in (self.large, self.small):
            actor = role.config.actor_rollout_ref.actor
            if actor.strategy not in ("fsdp", "fsdp2"):
                continue  # other engines lay their checkpoints out differently
            folder = f"{role.name}/actor"
            names = missing_checkpoint_files(
                partial / folder, actor.checkpoint.save_contents, role.actor_rollout_wg.world_size
            )
            if names:
                missing[folder] = names
        if missing:
            raise RuntimeError(shared_filesystem_error(partial, missing, socket.gethostname()))

    def _load_checkpoint(self) -> None:
        """Load both models, λ and the dataloader from ``trainer.resume_from_path``: the driver chose that checkpoint
        and checked it before Ray started (``checkpointing.choose_resume``), and set ``resume_mode=resume_path``.
        Any other mode here means there is nothing to resume."""
        if self.config.trainer.resume_mode != "resume_path":
            if self.config.trainer.resume_mode == "auto":
                print("[duet] no checkpoint found: training from scratch")
            return
        folder = Path(self.config.trainer.resume_from_path)
        state = json.loads((folder / "duet_state.json").read_text())
        for role in (self.large, self.small):
            role.actor_rollout_wg.load_checkpoint(str(folder / role.name / "actor"), del_local_after_load=False)
        self.lambda_schedule.load_state_dict(state["lambda_schedule"])
        self.global_steps = int(state["global_step"])
        restore_dataloader(self.train_dataloader, torch.load(folder / "data.pt", weights_only=False), self.global_steps)
        print(
            f"[duet] resumed from {folder} at step {self.global_steps}, lambda={self.lambda_schedule.value}", flush=True
        )
