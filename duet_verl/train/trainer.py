"""DUET joint training on verl 0.9.1: M writes a signal, m answers from it, both trained with GRPO.

``DuetTrainer`` extends verl's synchronous ``RayPPOTrainer`` (dataloaders, checkpoint helpers and the per-model
RPC wrappers ``_compute_old_log_prob`` / ``_compute_ref_log_prob`` / ``_update_actor`` are verl's) and overrides
what changes with two models:

- ``init_workers``: both models' ``ActorRolloutRefWorker`` s in one fused worker group on one resource pool
  (one Ray actor per GPU holding both), each with its own tagged rollout servers, agent loop and weight-sync
  manager; one reward loop (m's tokenizer) scores m's answers.
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

import uuid
from collections import defaultdict
from dataclasses import dataclass
from pprint import pprint
from typing import Any

import numpy as np
import ray
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm import tqdm
from verl import DataProto
from verl.protocol import pad_dataproto_to_divisor, unpad_dataproto
from verl.single_controller.ray import RayClassWithInitArgs
from verl.single_controller.ray.base import create_colocated_worker_cls
from verl.trainer.ppo.metric_utils import compute_data_metrics, compute_timing_metrics
from verl.trainer.ppo.ray_trainer import (
    RayPPOTrainer,
    Role,
    apply_kl_penalty,
    compute_advantage,
    compute_response_mask,
)
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.debug import marked_timer
from verl.utils.debug.metrics import calculate_debug_metrics
from verl.utils.metric import reduce_metrics
from verl.workers.engine_workers import ActorRolloutRefWorker

from duet_verl.core import (
    DuetRewards,
    LambdaSchedule,
    ResponseDecoder,
    compute_duet_rewards,
    extract_signal,
    place_on_last_token,
    response_lengths,
    small_group_ids,
    small_question,
    thinking_lengths,
)
from duet_verl.rollout.naming import server_name_prefix
from duet_verl.train.agent_loop import AGENT_NAME
from duet_verl.train.checkpointing import CheckpointPublishing
from duet_verl.train.duet_config import BASELINE_TEMPLATE, LARGE, SMALL, DuetConfig, DuetConfigError
from duet_verl.train.model_views import uses_lora
from duet_verl.train.preemption import COMPLETED, PREEMPTED
from duet_verl.train.records import StepRecords, StepRewards


@dataclass
class ModelRole:
    """One model's handles. Carries the attributes verl's ``RayPPOTrainer`` RPC wrappers read from ``self``
    (``config``, ``actor_rollout_wg``, ...), so the trainer calls those wrappers for m as well as for M."""

    name: str
    config: DictConfig
    actor_rollout_wg: Any = None
    server_manager: Any = None
    agent_loop: Any = None
    checkpoint_manager: Any = None
    distillation_config: Any = None
    ref_in_actor: bool = False

    @property
    def ref_policy_wg(self):
        return self.actor_rollout_wg

    def compute_log_probs(self, batch: DataProto) -> tuple[DataProto, float]:
        return RayPPOTrainer._compute_old_log_prob(self, batch)

    def compute_ref_log_probs(self, batch: DataProto) -> DataProto:
        return RayPPOTrainer._compute_ref_log_prob(self, batch)

    def update_actor(self, batch: DataProto) -> dict[str, float]:
        output = RayPPOTrainer._update_actor(self, batch)
        return {f"{self.name}/{key}": value for key, value in reduce_metrics(output.meta_info["metrics"]).items()}


def _object_array(items: list) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


class DuetTrainer(CheckpointPublishing, StepRecords, RayPPOTrainer):
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
        """One DUET step, phase by phase (docs/training.md, "One step"; the method's steps: docs/method.md). Each
        phase is one method: m's rollout, the rewards, log-probs, KL and advantages below, in call order (helpers
        follow the method that uses them); M's rollout and m's batch in the next section."""
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
        for role, role_batch in ((self.large, large_batch), (self.small, small_batch)):
            self._compute_old_log_probs(role, role_batch, metrics, timing)
        self._apply_large_kl(large_batch, metrics, timing)
        for role, role_batch in ((self.large, large_batch), (self.small, small_batch)):
            self._compute_advantages(role, role_batch)
        # Updates: m, then M
        if self.duet.train_small:
            with marked_timer("update_small", timing):
                metrics.update(self.small.update_actor(small_batch))
        with marked_timer("update_large", timing):
            metrics.update(self.large.update_actor(large_batch))
        for role, role_batch in ((self.large, large_batch), (self.small, small_batch)):
            data_metrics = compute_data_metrics(batch=role_batch, use_critic=False)
            # verl's per-token timings, under verl's section names, from this model's own timers and tokens
            sections = {"gen": f"gen_{role.name}", "ref": f"ref_{role.name}", "update_actor": f"update_{role.name}"}
            timed = {section: timing[name] for section, name in sections.items() if name in timing}
            per_token = compute_timing_metrics(batch=role_batch, timing_raw=timed)
            data_metrics.update({key: value for key, value in per_token.items() if key.startswith("timing_per_token")})
            metrics.update({f"{role.name}/{key}": value for key, value in data_metrics.items()})

    def _rollout_small(self, large_batch: DataProto, signals, timing: dict) -> tuple[DataProto, DataProto | None]:
        """m's k answers per signal (``small_batch``) and, when marginal utility is on, its k answers to the bare
        question (``baseline_batch``: per M response, or per question for ``per_prompt``). m's engine sleeps after the
        last of the two."""
        k = self.duet.small_rollouts_per_signal
        guided_rows = self._small_rows(large_batch, signals, k, self.duet.small_prompt_template, per_question=False)
        small_batch = self._generate_small(
            guided_rows, validate=False, timing=timing, timer="gen_small", sleep_after=not self.duet.needs_baseline
        )
        if not self.duet.needs_baseline:
            return small_batch, None
        per_question = self.duet.marginal_utility == "per_prompt"
        baseline_rows = self._small_rows(large_batch, signals, k, BASELINE_TEMPLATE, per_question)
        baseline_batch = self._generate_small(
            baseline_rows, validate=False, timing=timing, timer="gen_baseline", sleep_after=True
        )
        return small_batch, baseline_batch

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
        rows["uid"] = _object_array(small_group_ids(rows["question_uid"], rows["large_row"], self.duet.small_grouping))

    def _compute_old_log_probs(self, role: ModelRole, batch: DataProto, metrics: dict, timing: dict) -> None:
        """verl's pre-update plumbing for one model, as ``RayPPOTrainer.fit`` does it: balance sequence lengths
        over the workers, the meta_info its actor reads, the old log-probs, and the rollout-vs-actor check."""
        if self.config.trainer.balance_batch:
            self._balance_batch(batch, metrics=metrics, logging_prefix=f"{role.name}/global_seqlen")
        batch.meta_info["global_token_num"] = torch.sum(batch.batch["attention_mask"], dim=-1).tolist()
        batch.meta_info["images_seqlens"] = []  # read by verl's MFU estimate; text only here
        batch.meta_info["temperature"] = role.config.actor_rollout_ref.rollout.temperature
        with marked_timer(f"old_log_prob_{role.name}", timing):
            old_log_prob, mfu = role.compute_log_probs(batch)
            old_log_prob.batch.pop("entropys")
            batch.union(old_log_prob)
        metrics[f"{role.name}/perf/mfu/actor_infer"] = mfu
        metrics[f"{role.name}/perf/total_num_tokens"] = sum(batch.meta_info["global_token_num"])
        if "rollout_log_probs" in batch.batch.keys():
            debug_metrics = calculate_debug_metrics(batch)
            metrics.update({f"{role.name}/{key}": value for key, value in debug_metrics.items()})

    def _apply_large_kl(self, large_batch: DataProto, metrics: dict, timing: dict) -> None:
        """M's KL against its frozen reference, as verl's ``fit`` does: in the reward (paper, a KL-controlled
        penalty on every token), in the actor loss (``actor.use_kl_loss``: the update reads ``ref_log_prob``), or
        not at all (no reference model was built)."""
        if self.use_reference_policy:
            with marked_timer("ref_large", timing):
                large_batch.union(self.large.compute_ref_log_probs(large_batch))
        if self.config.algorithm.use_kl_in_reward:
            _, kl_metrics = apply_kl_penalty(
                large_batch, kl_ctrl=self.kl_ctrl_in_reward, kl_penalty=self.config.algorithm.kl_penalty
            )
            metrics.update({f"large/{key}": value for key, value in kl_metrics.items()})
        else:
            large_batch.batch["token_level_rewards"] = large_batch.batch["token_level_scores"]

    def _compute_advantages(self, role: ModelRole, batch: DataProto) -> None:
        """GRPO advantages within each group: M's n responses to a question, m's answers per its grouping."""
        compute_advantage(
            batch,
            adv_estimator=self.config.algorithm.adv_estimator,
            num_repeat=role.config.actor_rollout_ref.rollout.n,
            norm_adv_by_std_in_grpo=self.config.algorithm.get("norm_adv_by_std_in_grpo", True),
            config=self.config.algorithm,
        )

    # ------------------------------------------------------------------ the rollouts: M, then m on its signals
    def _generate(self, role: ModelRole, batch: DataProto, timing: dict, timer: str, sleep_after: bool = True):
        """Sync ``role``'s weights into its (sleeping) rollout engine, generate, and put it back to sleep."""
        if self._awake not in (None, role.name):
            raise RuntimeError(f"rollout engine {self._awake} is still awake while waking {role.name}")
        if self._awake is None:
            with marked_timer(f"sync_weights_{role.name}", timing):
                role.checkpoint_manager.update_weights(self.global_steps)
            self._awake = role.name
            print(f"[duet] rollout engine awake: {role.name}", flush=True)
        # verl's agent loop splits the batch evenly over its workers (DataProto.chunk asserts it): pad with copies
        # of the first rows, as verl's own _validate does, and drop their outputs
        padded, pad_size = pad_dataproto_to_divisor(batch, role.config.actor_rollout_ref.rollout.agent.num_workers)
        with marked_timer(timer, timing):
            output = unpad_dataproto(role.agent_loop.generate_sequences(padded), pad_size=pad_size)
        output.meta_info.pop("timing", None)
        if sleep_after:
            role.checkpoint_manager.sleep_replicas()
            self._awake = None
            print(f"[duet] rollout engine asleep: {role.name}", flush=True)
        return output

    def _generate_large(self, batch_dict: dict, n: int, validate: bool, timing: dict, timer: str) -> DataProto:
        """M's n responses per question, one row each, with the question's ``uid`` and an explicit ``large_row`` id."""
        batch = DataProto.from_single_dict(batch_dict)
        batch.non_tensor_batch["uid"] = _object_array([str(uuid.uuid4()) for _ in range(len(batch))])
        gen_batch = self._get_gen_batch(batch).repeat(repeat_times=n, interleave=True)
        gen_batch.meta_info.update({"global_steps": self.global_steps, "validate": validate})
        large_batch = batch.repeat(repeat_times=n, interleave=True).union(
            self._generate(self.large, gen_batch, timing, timer)
        )
        large_batch.batch["response_mask"] = compute_response_mask(large_batch)
        large_batch.non_tensor_batch["large_row"] = np.arange(len(large_batch))
        large_batch.non_tensor_batch["raw_prompt"] = gen_batch.non_tensor_batch["raw_prompt"]
        texts = self._response_texts(large_batch, self.large_decoder.batch_decode)
        large_batch.non_tensor_batch["response_text"] = _object_array(texts)
        return large_batch

    @staticmethod
    def _response_texts(batch: DataProto, batch_decode) -> list[str]:
        """Each row's valid response tokens as text, by ``batch_decode``: M's ``ResponseDecoder`` (special tokens
        dropped but the thinking markers) or ``_small_texts``' (special tokens dropped)."""
        responses, lengths = batch.batch["responses"].tolist(), batch.batch["response_mask"].sum(-1).tolist()
        return batch_decode([ids[:length] for ids, length in zip(responses, lengths, strict=True)])

    def _small_texts(self, batch: DataProto) -> list[str]:
        """m's answers as the reward manager decodes them for scoring."""
        decode = self.small_tokenizer.batch_decode
        return self._response_texts(batch, lambda rows: decode(rows, skip_special_tokens=True))

    def _signals(self, large_batch: DataProto) -> list:
        """Each M response's signal for m: its thinking (``core.signal.extract_signal``, M's markers)."""
        start, end = self.duet.think_start, self.duet.think_end
        return [extract_signal(text, start, end) for text in large_batch.non_tensor_batch["response_text"]]

    def _small_rows(
        self, large_batch: DataProto, signals, k: int, template: str, per_question: bool, question_form: str = "bare"
    ) -> DataProto:
        """k m rows per M row (guided and per-signal baseline) or per question (per-prompt baseline); m reads the
        question in ``question_form`` (``core.small_question``; validation's ``duet.val_small_question``)."""
        nt = large_batch.non_tensor_batch
        rows = defaultdict(list)
        seen_questions = set()
        for i in range(len(large_batch)):
            if per_question:
                if nt["uid"][i] in seen_questions:
                    continue
                seen_questions.add(nt["uid"][i])
            question = small_question((nt["extra_info"][i] or {}).get("question"), nt["raw_prompt"][i], question_form)
            for _ in range(k):
                rows["large_row"].append(-1 if per_question else int(nt["large_row"][i]))
                rows["question_uid"].append(nt["uid"][i])
                rows["question"].append(question)
                rows["signal"].append(None if template == BASELINE_TEMPLATE else signals[i].text)
                rows["template"].append(template)
                rows["raw_prompt"].append([{"role": "user", "content": question}])
                rows["agent_name"].append(AGENT_NAME)
                for key in ("data_source", "reward_model", "extra_info"):
                    rows[key].append(nt[key][i])
        return DataProto(non_tensor_batch={key: _object_array(values) for key, values in rows.items()})

    def _generate_small(self, small_rows: DataProto, validate: bool, timing: dict, timer: str, sleep_after: bool):
        """m's answers to ``small_rows``, scored in verl's reward loop (``rm_scores``), with the rows' ids kept."""
        small_rows.meta_info.update({"global_steps": self.global_steps, "validate": validate})
        batch = self._generate(self.small, small_rows, timing, timer, sleep_after=sleep_after)
        batch.non_tensor_batch.update(small_rows.non_tensor_batch)  # m's rows carry no tensors to union
        batch.batch["response_mask"] = compute_response_mask(batch)
        return batch

    # ------------------------------------------------------------------ workers
    def init_workers(self):
        """Both models in one fused worker group; M's servers are created and put to sleep before m's."""
        from verl.checkpoint_engine import CheckpointEngineManager
        from verl.experimental.agent_loop import AgentLoopManager
        from verl.experimental.reward_loop import RewardLoopManager
        from verl.workers.rollout.llm_server import LLMServerManager

        self.resource_pool_manager.create_resource_pool()
        pool = self.resource_pool_manager.get_resource_pool(Role.ActorRolloutRef)
        worker_cls = ray.remote(ActorRolloutRefWorker)
        class_dict = {
            # M's reference model exists only when a KL term reads it (verl's need_reference_policy), and with
            # LoRA it is M's base inside the actor
            LARGE: RayClassWithInitArgs(
                cls=worker_cls,
                config=self.large.config.actor_rollout_ref,
                role="actor_rollout_ref" if self.use_reference_policy and not self.ref_in_actor else "actor_rollout",
            ),
            SMALL: RayClassWithInitArgs(
                cls=worker_cls, config=self.small.config.actor_rollout_ref, role="actor_rollout"
            ),
        }
        fused = self.ray_worker_group_cls(
            resource_pool=pool,
            ray_cls_with_init=create_colocated_worker_cls(class_dict=class_dict),
            device_name=self.device_name,
            **self._profiler_worker_kwargs(),
        )
        worker_groups = fused.spawn(prefix_set=class_dict.keys())
        for role in (self.large, self.small):
            role.actor_rollout_wg = worker_groups[role.name]
            role.actor_rollout_wg.init_model()
        self.actor_rollout_wg = self.large.actor_rollout_wg
        if self.use_reference_policy:
            self.ref_policy_wg = self.large.actor_rollout_wg

        self.reward_loop_manager = RewardLoopManager(config=self.small.config, rm_resource_pool=None)
        for role in (self.large, self.small):
            role.server_manager = LLMServerManager.create(
                config=role.config, worker_group=role.actor_rollout_wg, rollout_resource_pool=pool
            )
            role.agent_loop = AgentLoopManager.create(
                config=role.config,
                llm_client=role.server_manager.get_client(),
                reward_loop_worker_handles=self.reward_loop_manager.reward_loop_workers if role is self.small else None,
            )
            role.checkpoint_manager = CheckpointEngineManager(
                config=omega_conf_to_dataclass(role.config.actor_rollout_ref.rollout.checkpoint_engine),
                actor_wg=role.actor_rollout_wg,
                replicas=role.server_manager.get_replicas(),
            )
            role.checkpoint_manager.sleep_replicas()
            prefix = f"{server_name_prefix(role.config.actor_rollout_ref.rollout)}server_"
            servers = sorted(name for name in ray.util.list_named_actors() if name.startswith(prefix))
            print(f"[duet] {role.name} rollout servers: {', '.join(servers)}", flush=True)
        self.checkpoint_manager = self.large.checkpoint_manager

    # ------------------------------------------------------------------ profiler
    # verl's profiler window (global_profiler.steps), opened on M's workers only: both models' workers share one
    # process per GPU and a torch profiler is process-wide (one window per process), so M's window records m's
    # log-probs and update as well; m's own profiler config, when enabled, only labels its stages in that window.
    def _profiler_worker_kwargs(self) -> dict:
        """What verl's ``init_workers`` passes its worker groups for a profiled run (nsys wraps the workers)."""
        profiler = self.config.global_profiler
        if not profiler.get("steps"):
            return {}
        kwargs = {"profile_steps": list(profiler.steps)}
        if profiler.get("tool") == "nsys":
            nsys = profiler.global_tool_config.nsys
            kwargs["worker_nsight_options"] = OmegaConf.to_container(nsys.worker_nsight_options)
        return kwargs

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
        k = self.duet.val_small_rollouts_per_signal
        for batch_dict in self.val_dataloader:
            n = self.config.actor_rollout_ref.rollout.val_kwargs.n
            large_batch = self._generate_large(batch_dict, n, validate=True, timing=timing, timer="val_gen_large")
            signals = self._signals(large_batch)
            template, form = self.duet.small_prompt_template, self.duet.val_small_question
            small_rows = self._small_rows(large_batch, signals, k, template, per_question=False, question_form=form)
            small_batch = self._generate_small(
                small_rows, validate=True, timing=timing, timer="val_gen_small", sleep_after=True
            )
            thinking = self._thinking_lengths(large_batch)
            for record in self._answer_records(large_batch, small_batch, signals, thinking):
                records.append({**record, "step": self.global_steps})
        self._write_validation_generations(records)
        metrics = self._validation_metrics(records, response_cap=self.config.actor_rollout_ref.rollout.response_length)
        metrics.update({f"timing_s/{name}": seconds for name, seconds in timing.items()})
        return metrics
