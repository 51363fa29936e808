#!/usr/bin/env bash
# DUET with the paper's settings: M = Qwen3-8B writes the reasoning signal, m = Qwen3-0.6B answers, both
# trained with GRPO, adaptive length penalty on M (docs/method.md "Hyperparameters"). 1 node × 8 GPUs by
# default; with RAY_ADDRESS set it is submitted to that Ray cluster (NNODES=2 GPUS_PER_NODE=8 ...).
# Knobs are environment variables (recipes/common_gpu.sh); extra hydra overrides pass through:
#   bash recipes/run_duet_qwen3.sh
#   LOGGER='[console,wandb]' TRAIN_DATA=dapo_math17k bash recipes/run_duet_qwen3.sh trainer.total_training_steps=200
#   DRY_RUN=1 bash recipes/run_duet_qwen3.sh     # print the overrides, launch nothing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MODEL_LARGE=${MODEL_LARGE:-Qwen/Qwen3-8B}
MODEL_SMALL=${MODEL_SMALL:-Qwen/Qwen3-0.6B}
EXPERIMENT=${EXPERIMENT:-duet_$(basename "$MODEL_LARGE")_$(basename "$MODEL_SMALL")}
OUT_DIR=${OUT_DIR:-$HOME/duet_runs/$EXPERIMENT}
# shellcheck source=SCRIPTDIR/common_gpu.sh
source "$here/common_gpu.sh"

mapfile -t large_overrides < <(large_model_overrides)
mapfile -t small_overrides < <(
  gpu_model_overrides small_actor_rollout_ref "$MODEL_SMALL" "$LR_SMALL" "$TP_SMALL" "$GPU_MEM_SMALL" \
    "$OFFLOAD_SMALL" "$SMALL_TOKENS_PER_GPU" "$SMALL_MINI_BATCH"
)
mapfile -t schedule_overrides < <(trainer_overrides "$EXPERIMENT" "$OUT_DIR")

overrides=(
  "${data_overrides[@]}"
  "${large_overrides[@]}"
  "actor_rollout_ref.rollout.n=$N"
  "${large_val_overrides[@]}"
  "${small_overrides[@]}"
  "small_actor_rollout_ref.rollout.response_length=$SMALL_RESPONSE"
  small_actor_rollout_ref.rollout.val_kwargs.temperature=0  # m answers greedily in validation
  "duet.val_small_question=$VAL_SMALL_QUESTION"
  algorithm.use_kl_in_reward=True
  "algorithm.kl_ctrl.kl_coef=$KL_COEF"
  "duet.small_rollouts_per_signal=$K"
  "duet.length_bound=$LENGTH_BOUND"
  "duet.lambda_schedule=$LAMBDA_SCHEDULE"
  "duet.lambda_init=$LAMBDA_INIT"
  "duet.lambda_eta=$LAMBDA_ETA"
  "duet.marginal_utility=$MARGINAL_UTILITY"
  "duet.small_prompt_template=$SMALL_TEMPLATE"
  "${schedule_overrides[@]}"
)
# Every m answer with the M response and signal it read, one jsonl per step: tens of MB a step, so opt-in.
if [ -n "${ROLLOUT_DATA_DIR:-}" ]; then overrides+=("trainer.rollout_data_dir=$ROLLOUT_DATA_DIR"); fi

prepare_data
launch duet_verl.main "${overrides[@]}" "$@"
