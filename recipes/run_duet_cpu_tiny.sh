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
# verl's JSONL logger: every step's metrics in $OUT_DIR/duet_cpu/duet_tiny.jsonl (VERL_FILE_LOGGER_PATH: another file)
export VERL_FILE_LOGGER_ROOT=${VERL_FILE_LOGGER_ROOT:-$OUT_DIR}
job_env+=(VERL_FILE_LOGGER_ROOT VERL_FILE_LOGGER_PATH)

overrides=$(cpu_overrides duet --steps "$STEPS" --n "$N" --k "$K" --batch "$BATCH" --lr "$LR" --out-dir "$OUT_DIR")
mapfile -t overrides <<<"$overrides"
launch duet_verl.main "${overrides[@]}" "$@"
