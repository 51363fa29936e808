"""DUET joint training on verl 0.9.1: M writes a signal, m answers from it, both trained with GRPO.

``DuetTrainer`` extends verl's synchronous ``RayPPOTrainer`` (dataloaders, checkpoint helpers, the balancer) with
DUET's step, read top-down: ``fit``, ``_duet_step``, then its phases in call order. What the step takes of verl
for each model (the per-model log-prob and update wrappers, KL, advantages, worker start-up) is in
``duet_verl.train.verl_adapter``; the rollouts, shared with validation, in ``duet_verl.train.rollout``.

- ``init_workers``: both models' workers in one fused worker group on one resource pool (one Ray actor per GPU
  holding both), each with its own tagged rollout servers, agent loop and weight-sync manager; one reward loop
  (m's tokenizer) scores m's answers.
- ``fit``: one DUET step is sync M → generate M → sleep M → sync m → generate m (guided, then baseline) →
  sleep m → rewards (with the current λ) → λ update from this step's M lengths (the next step's λ) → KL (per
  ``algorithm.use_kl_in_reward`` / ``actor.use_kl_loss``) → GRPO advantages → update m → update M. At most one
  rollout engine is awake at a time.
- ``_validate``, ``_save_checkpoint``, ``_load_checkpoint``: the same chain without length penalty (its
  generations written to ``trainer.validation_data_dir``), and checkpoints holding both models, λ, the
  dataloader and a manifest of file sizes, published only when complete and pruned to
  ``trainer.max_actor_ckpt_to_keep``. After a stop signal (``duet_verl.train.preemption``), ``fit`` saves after the
  step in flight and returns ``PREEMPTED``.

Rows of M and m are linked by explicit ids (``large_row``), never by position.
"""

from __future__ import annotations

from pprint import pprint
from typing import Any

import numpy as np
import ray
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm import tqdm
from verl import DataProto
from verl.trainer.ppo.ray_trainer import RayPPOTrainer
from verl.utils.debug import marked_timer

from duet_verl.core import (
    DuetRewards,
    LambdaSchedule,
    ResponseDecoder,
    compute_duet_rewards,
    place_on_last_token,
    response_lengths,
    small_group_ids,
    thinking_lengths,
)
from duet_verl.train.checkpointing import CheckpointPublishing
from duet_verl.train.duet_config import LARGE, SMALL, DuetConfig, DuetConfigError
from duet_verl.train.model_views import uses_lora
from duet_verl.train.preemption import COMPLETED, PREEMPTED
from duet_verl.train.records import StepRecords, StepRewards
from duet_verl.train.rollout import DuetRollouts
from duet_verl.train.verl_adapter import (
    ModelRole,
    apply_large_kl,
    compute_advantages,
    compute_old_log_probs,
    model_metrics,
    object_array,
    start_workers,
)


class DuetTrainer(DuetRollouts, CheckpointPublishing, StepRecords, RayPPOTrainer):
    """verl's PPO trainer driving two models; ``config`` is M's view, ``small_config`` m's."""

    def __init__(self, *, small_config: DictConfig, duet: DuetConfig, small_tokenizer, stop_request=None, **kwargs):
        super().__init__(**kwargs)
        self.duet = duet
        self.stop_request = stop_request  # duet_verl.train.preemption.StopRequest actor: the driver's stop signal
        self.small_tokenizer = small_tokenizer
        with open_dict(small_config):
            small_config.actor_rollout_ref.actor.optim.total_training_steps = self.total_training_steps
        # With LoRA, a model's reference is its own base with the adapter disabled (verl's ref_in_actor).
        self.large = ModelRole(LARGE, self.config, ref_in_actor=self.ref_in_actor)
        self.small = ModelRole(SMALL, small_config, ref_in_actor=uses_lora(small_config.actor_rollout_ref.model))
        self.lambda_schedule = LambdaSchedule.from_config(duet)
        markers = (duet.think_start, duet.think_end)
        self.large_decoder = ResponseDecoder(self.tokenizer, markers)  # M's responses, thinking markers kept
        self.think_end_id = self.large_decoder.end_id
        if self.think_end_id < 0 and duet.length_measure == "thinking":
            raise DuetConfigError(
                f"duet.length_measure=thinking counts M's tokens up to duet.think_end={duet.think_end!r}, which is "
                "not one token of M's tokenizer: set duet.think_end to M's own end-of-thinking token"
            )
        self._awake: str | None = None

    def init_workers(self):
        """Both models in one fused worker group; M's servers are created and put to sleep before m's."""
        start_workers(self, self.large, self.small)

    # ------------------------------------------------------------------ training loop
    def fit(self):
        from verl.utils.tracking import Tracking

        tracker = Tracking(
            project_name=self.config.trainer.project_name,
            experiment_name=self.config.trainer.experiment_name,
            default_backend=self.config.trainer.logger,
            config=OmegaConf.to_container(self.config, resolve=True),
        )
        self.global_steps = 0
        self._load_checkpoint()
        if self.config.trainer.get("val_before_train", True) or self.config.trainer.get("val_only", False):
            val_metrics = self._validate()
            pprint(f"Initial validation metrics: {val_metrics}")
            tracker.log(data=val_metrics, step=self.global_steps)
            if self.config.trainer.get("val_only", False):
                return COMPLETED
        if self.global_steps >= self.total_training_steps:
            print(f"[duet] nothing to do: resumed at step {self.global_steps} of {self.total_training_steps}")
            return COMPLETED
        if self._stop_reason():  # asked to stop before the first step: the state is the loaded checkpoint's
            print(f"[duet] stopped before step {self.global_steps + 1}: nothing new to save", flush=True)
            return PREEMPTED
        progress = tqdm(total=self.total_training_steps, initial=self.global_steps, desc="DUET training")
        start_epoch = self.global_steps // len(self.train_dataloader)
        for epoch in range(start_epoch, self.config.trainer.total_epochs):
            for batch_dict in self.train_dataloader:
                self.global_steps += 1
                metrics: dict[str, Any] = {"training/global_step": self.global_steps, "training/epoch": epoch}
                timing: dict[str, float] = {}
                is_last_step = self.global_steps >= self.total_training_steps
                opens, closes = self._profile_window(self.global_steps)
                with marked_timer("step", timing):
                    if opens:
                        self.large.actor_rollout_wg.start_profile(role="train", profile_step=self.global_steps)
                    self._duet_step(batch_dict, metrics, timing)
                    if closes:
                        last = self.global_steps == max(self.config.global_profiler.steps)
                        self.large.actor_rollout_wg.stop_profile(run_command=last)
                # A stop signal: save now whatever save_freq says, and skip validation (the grace period is short)
                stop = None if is_last_step else self._stop_reason()
                if stop:
                    print(f"[duet] {stop}: step {self.global_steps} is done; writing its checkpoint", flush=True)
                save_freq = self.config.trainer.save_freq
                saved = bool(stop) or (save_freq > 0 and (is_last_step or self.global_steps % save_freq == 0))
                if saved:
                    with marked_timer("save_checkpoint", timing):
                        self._save_checkpoint()
                test_freq = self.config.trainer.test_freq
                if not stop and test_freq > 0 and (is_last_step or self.global_steps % test_freq == 0):
                    with marked_timer("testing", timing):
                        metrics.update(self._validate())
                    # A stop signal during validation: checkpoint this step now, not after one more step
                    stop = None if is_last_step else self._stop_reason()
                    if stop:
                        print(f"[duet] {stop} during validation: step {self.global_steps} is done", flush=True)
                    if stop and not saved:
                        with marked_timer("save_checkpoint", timing):
                            self._save_checkpoint()
                metrics.update({f"timing_s/{name}": seconds for name, seconds in timing.items()})
                metrics.update(self._throughput(metrics, timing["step"]))
                tracker.log(data=metrics, step=self.global_steps)
                progress.update(1)
                if stop:
                    progress.close()
                    print(f"[duet] stopped for {stop} after step {self.global_steps}; the same command resumes at "
                          f"step {self.global_steps + 1}", flush=True)  # fmt: skip
                    return PREEMPTED
                if is_last_step:
                    progress.close()
                    return COMPLETED
        progress.close()
        return COMPLETED

    # ------------------------------------------------------------------ one training step
    def _duet_step(self, batch_dict: dict, metrics: dict, timing: dict) -> None:
        """One DUET step, phase by phase (docs/training.md, "One step"; the method's steps: docs/method.md): the
        rollouts (``duet_verl.train.rollout``), then the rewards below, then verl's plumbing for each model
        (``duet_verl.train.verl_adapter``)."""
        # M's rollout: n responses per question; the thinking of each is its signal to m
        large_batch = self._generate_large(
            batch_dict, self.config.actor_rollout_ref.rollout.n, validate=False, timing=timing, timer="gen_large"
        )
        signals = self._signals(large_batch)
        # m's rollout: k answers per signal (and k times without one, for the marginal-utility baseline)
        small_batch, baseline_batch = self._rollout_small(large_batch, signals, timing)
        # Rewards at this step's λ: m's accuracy with the signal − without it − λ · length / B
        with marked_timer("duet_rewards", timing):
            step_rewards = self._duet_rewards(large_batch, small_batch, baseline_batch)
            self._attach_rewards(large_batch, small_batch, step_rewards.rewards)
        metrics.update(self._duet_metrics(large_batch, small_batch, signals, step_rewards))
        self._dump_samples(large_batch, small_batch, signals, step_rewards)
        # λ for the next step, from this step's M lengths
        self.lambda_schedule.update(float(step_rewards.lengths.mean()))
        # Each model's batch as verl's update reads it: old log-probs, M's KL, GRPO advantages
        models = ((self.large, large_batch), (self.small, small_batch))
        for role, role_batch in models:
            compute_old_log_probs(self, role, role_batch, metrics, timing)
        apply_large_kl(self, self.large, large_batch, metrics, timing)
        for role, role_batch in models:
            compute_advantages(self.config.algorithm, role, role_batch)
        # Updates: m, then M
        if self.duet.train_small:
            with marked_timer("update_small", timing):
                metrics.update(self.small.update_actor(small_batch))
        with marked_timer("update_large", timing):
            metrics.update(self.large.update_actor(large_batch))
        # verl's per-model metrics: data, and per-token timings from each model's own timers
        for role, role_batch in models:
            metrics.update(model_metrics(role, role_batch, timing))

    def _duet_rewards(
        self, large_batch: DataProto, small_batch: DataProto, baseline_batch: DataProto | None
    ) -> StepRewards:
        """M's reward per response from m's scores (``core.rewards``), with the length the config penalises."""
        thinking = self._thinking_lengths(large_batch)
        measured = {"thinking": thinking, "response": response_lengths(large_batch.batch["response_mask"])}
        lengths = measured[self.duet.length_measure]
        question_index = {uid: i for i, uid in enumerate(dict.fromkeys(large_batch.non_tensor_batch["uid"]))}
        lam = self.lambda_schedule.value
        rewards = compute_duet_rewards(
            small_scores=small_batch.batch["rm_scores"].sum(-1).numpy(),
            small_parent=small_batch.non_tensor_batch["large_row"].astype(np.int64),
            num_large=len(large_batch),
            large_lengths=lengths,
            lam=lam,
            length_bound=self.duet.length_bound,
            marginal_utility=self.duet.marginal_utility,
            baseline_scores=None if baseline_batch is None else baseline_batch.batch["rm_scores"].sum(-1).numpy(),
            baseline_parent=None if baseline_batch is None else self._baseline_parent(baseline_batch, question_index),
            large_question=np.array([question_index[u] for u in large_batch.non_tensor_batch["uid"]], dtype=np.int64),
        )
        return StepRewards(rewards=rewards, lam=lam, lengths=lengths, thinking_lengths=thinking)

    @staticmethod
    def _baseline_parent(baseline_batch: DataProto, question_index: dict) -> np.ndarray:
        """What each baseline answer's score averages over: its M row (per_signal) or its question (per_prompt)."""
        parents = baseline_batch.non_tensor_batch["large_row"].astype(np.int64)
        if (parents >= 0).all():
            return parents
        return np.array([question_index[u] for u in baseline_batch.non_tensor_batch["question_uid"]], dtype=np.int64)

    def _thinking_lengths(self, large_batch: DataProto) -> np.ndarray:
        return thinking_lengths(large_batch.batch["responses"], large_batch.batch["response_mask"], self.think_end_id)

    def _attach_rewards(self, large_batch: DataProto, small_batch: DataProto, rewards: DuetRewards) -> None:
        """Put each model's rewards where verl's advantage code reads them, and give m's answers their GRPO
        group ids (``duet.small_grouping``): M's reward on its last response token, m's own 0/1 score."""
        large_ids = large_batch.non_tensor_batch["large_row"].astype(np.int64)
        large_batch.batch["token_level_scores"] = place_on_last_token(
            torch.as_tensor(rewards.large_reward[large_ids], dtype=torch.float32), large_batch.batch["response_mask"]
        )
        small_batch.batch["token_level_scores"] = small_batch.batch["rm_scores"]
        small_batch.batch["token_level_rewards"] = small_batch.batch["rm_scores"]
        rows = small_batch.non_tensor_batch
        rows["uid"] = object_array(small_group_ids(rows["question_uid"], rows["large_row"], self.duet.small_grouping))

    # ------------------------------------------------------------------ fit's helpers
    # verl's profiler window (global_profiler.steps), opened on M's workers only: both models' workers share one
    # process per GPU and a torch profiler is process-wide (one window per process), so M's window records m's
    # log-probs and update as well; m's own profiler config, when enabled, only labels its stages in that window.
    def _profile_window(self, step: int) -> tuple[bool, bool]:
        """Whether ``step`` opens and closes a profiler window: one per profiled step, or one per run of consecutive
        profiled steps with ``global_profiler.profile_continuous_steps``, as verl's ``fit`` does."""
        steps = set(self.config.global_profiler.get("steps") or ())
        if step not in steps:
            return False, False
        if not self.config.global_profiler.get("profile_continuous_steps", False):
            return True, True
        return step - 1 not in steps, step + 1 not in steps

    def _stop_reason(self) -> str | None:
        """The signal the driver was stopped with, if any (one small Ray call per step)."""
        return ray.get(self.stop_request.reason.remote()) if self.stop_request is not None else None

    # ------------------------------------------------------------------ validation
    def _validate(self) -> dict[str, float]:
        """The DUET chain with validation sampling and no length penalty, reported per data_source. Every m
        answer is written to ``trainer.validation_data_dir`` (one JSONL per validation) and the first
        ``trainer.log_val_generations`` go to the tracker, as verl does for one model."""
        records: list[dict] = []
        timing: dict[str, float] = {}
        for batch_dict in self.val_dataloader:
            large_batch, signals, small_batch = self._validation_rollout(batch_dict, timing)
            thinking = self._thinking_lengths(large_batch)
            for record in self._answer_records(large_batch, small_batch, signals, thinking):
                records.append({**record, "step": self.global_steps})
        self._write_validation_generations(records)
        metrics = self._validation_metrics(records, response_cap=self.config.actor_rollout_ref.rollout.response_length)
        metrics.update({f"timing_s/{name}": seconds for name, seconds in timing.items()})
        return metrics
