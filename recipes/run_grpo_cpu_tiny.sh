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
# verl's JSONL logger: every step's metrics in $OUT_DIR/duet_cpu/grpo_tiny.jsonl (VERL_FILE_LOGGER_PATH: another file)
export VERL_FILE_LOGGER_ROOT=${VERL_FILE_LOGGER_ROOT:-$OUT_DIR}
job_env+=(VERL_FILE_LOGGER_ROOT VERL_FILE_LOGGER_PATH)
ENTRY=${ENTRY:-verl.trainer.main_ppo}  # the trainer's module (duet_verl.experiments.adaptive_penalty: DUET's λ rule)

overrides=$(cpu_overrides grpo --steps "$STEPS" --n "$N" --batch "$BATCH" --lr "$LR" --out-dir "$OUT_DIR")
mapfile -t overrides <<<"$overrides"
launch "$ENTRY" "${overrides[@]}" "$@"
