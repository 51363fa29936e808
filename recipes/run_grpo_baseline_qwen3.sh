#!/usr/bin/env bash
# The paper's "train M alone" baseline: Qwen3-8B with verl's plain GRPO (python -m verl.trainer.main_ppo), on
# the data, lengths, batch sizes, KL-in-reward and validation of run_duet_qwen3.sh, scored by the same DUET
# scorer, with no length penalty and no m, on the trainer DUET's M trains on (verl's RayPPOTrainer, not main_ppo's
# default V1), so that a difference between the two runs is not one of trainers. That trainer splits a step's
# TRAIN_BATCH × N rollouts evenly over the agent loop's workers (verl's 8): keep TRAIN_BATCH × N a multiple of 8.
# Same knobs (recipes/common_gpu.sh); extra hydra overrides pass through.
#   bash recipes/run_grpo_baseline_qwen3.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MODEL_LARGE=${MODEL_LARGE:-Qwen/Qwen3-8B}
EXPERIMENT=${EXPERIMENT:-grpo_$(basename "$MODEL_LARGE")}
OUT_DIR=${OUT_DIR:-$HOME/duet_runs/$EXPERIMENT}
# shellcheck source=SCRIPTDIR/common_gpu.sh
source "$here/common_gpu.sh"

mapfile -t large_overrides < <(large_model_overrides)
mapfile -t schedule_overrides < <(trainer_overrides "$EXPERIMENT" "$OUT_DIR")

overrides=(
  trainer.use_v1=False                                  # RayPPOTrainer, which DuetTrainer extends
  algorithm.adv_estimator=grpo
  algorithm.use_kl_in_reward=True                       # as DUET's M: KL in the reward, not in the loss
  "algorithm.kl_ctrl.kl_coef=$KL_COEF"
  actor_rollout_ref.actor.use_kl_loss=False
  "${data_overrides[@]}"
  "${large_overrides[@]}"
  "actor_rollout_ref.rollout.n=$N"
  "${large_val_overrides[@]}"
  "${duet_reward_overrides[@]}"
  "${schedule_overrides[@]}"
)

prepare_data
launch verl.trainer.main_ppo "${overrides[@]}" "$@"
