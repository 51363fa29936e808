#!/usr/bin/env bash
# A few DUET steps on CPU with the tiny offline models: M = model_large, m = model_small, both trained, through
# the real verl stack (fused worker group, FSDP2, agent loops, reward loop) and the duet-verl CPU backend.
# Prints the duet/ metrics every step. Extra hydra overrides pass through.
#   bash recipes/run_duet_cpu_tiny.sh duet.marginal_utility=off
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common_cpu.sh
source "$here/common_cpu.sh"

STEPS=${STEPS:-3}
N=${N:-2}                         # M responses per question
K=${K:-2}                         # m answers per signal
BATCH=${BATCH:-2}                 # questions per step
LR=${LR:-1e-4}
OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/duet_cpu_tiny}

mapfile -t large_overrides < <(cpu_model_overrides actor_rollout_ref; cpu_ref_overrides actor_rollout_ref)
mapfile -t small_overrides < <(cpu_model_overrides small_actor_rollout_ref)

overrides=(
  "data.train_batch_size=$BATCH"
  data.val_batch_size=4
  "${tiny_large_overrides[@]}"
  "actor_rollout_ref.actor.optim.lr=$LR"
  "actor_rollout_ref.actor.ppo_mini_batch_size=$BATCH"
  "actor_rollout_ref.rollout.n=$N"
  "small_actor_rollout_ref.model.path=$TINY_DIR/model_small"
  "small_actor_rollout_ref.actor.optim.lr=$LR"
  "small_actor_rollout_ref.actor.ppo_mini_batch_size=$BATCH"
  small_actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4
  small_actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4
  small_actor_rollout_ref.rollout.response_length=16
  "${large_overrides[@]}"
  "${small_overrides[@]}"
  "${cpu_ray_overrides[@]}"
  reward.custom_reward_function.path=pkg://duet_verl.worlds.tiny  # shaped reward: random tiny models score > 0
  reward.custom_reward_function.name=compute_score
  "duet.small_rollouts_per_signal=$K"
  duet.length_bound=16
  duet.lambda_init=0.5
  duet.lambda_eta=0.1
  trainer.logger=console
  trainer.project_name=duet_cpu
  trainer.experiment_name=duet_tiny
  "trainer.total_training_steps=$STEPS"
  trainer.val_before_train=False
  "trainer.test_freq=$STEPS"
  trainer.save_freq=-1
  "trainer.default_local_dir=$OUT_DIR/checkpoints"
)

launch duet_verl.main "${overrides[@]}" "$@"
