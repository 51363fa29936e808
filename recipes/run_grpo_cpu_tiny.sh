#!/usr/bin/env bash
# Single-model GRPO on CPU through verl's own entry point (verl.trainer.main_ppo) with the duet-verl CPU
# backend and the tiny offline Qwen3 model: a few minutes on a laptop. Extra hydra overrides pass through.
#   bash recipes/run_grpo_cpu_tiny.sh trainer.total_training_steps=3
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common_cpu.sh
source "$here/common_cpu.sh"

STEPS=${STEPS:-2}
N=${N:-2}                         # rollouts per prompt (GRPO group size)
BATCH=${BATCH:-4}                 # prompts per step
LR=${LR:-1e-5}
OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/duet_grpo_cpu_tiny}
ENTRY=${ENTRY:-verl.trainer.main_ppo}  # the trainer's module (benchmarks: duet_verl.experiments.adaptive_penalty)

mapfile -t model_overrides < <(cpu_model_overrides actor_rollout_ref; cpu_ref_overrides actor_rollout_ref)

overrides=(
  algorithm.adv_estimator=grpo
  algorithm.use_kl_in_reward=False
  "data.train_batch_size=$BATCH"
  "${tiny_large_overrides[@]}"
  "actor_rollout_ref.actor.optim.lr=$LR"
  "actor_rollout_ref.actor.ppo_mini_batch_size=$BATCH"
  actor_rollout_ref.actor.use_kl_loss=True           # reference model with KL, in the loss
  actor_rollout_ref.actor.kl_loss_coef=0.001
  actor_rollout_ref.actor.kl_loss_type=low_var_kl
  "actor_rollout_ref.rollout.n=$N"
  actor_rollout_ref.rollout.val_kwargs.temperature=0   # greedy validation (verl reads no val_kwargs.do_sample)
  "${model_overrides[@]}"
  "${cpu_ray_overrides[@]}"
  "${duet_reward_overrides[@]}"
  reward.custom_reward_function.path=pkg://duet_verl.worlds.tiny  # shaped reward: random tiny models score > 0
  reward.custom_reward_function.name=compute_score
  trainer.logger=console
  trainer.project_name=duet_cpu
  trainer.experiment_name=grpo_tiny
  "trainer.total_training_steps=$STEPS"
  trainer.val_before_train=False
  "trainer.test_freq=$STEPS"
  trainer.save_freq=-1
  "trainer.default_local_dir=$OUT_DIR/checkpoints"
)

launch "$ENTRY" "${overrides[@]}" "$@"
