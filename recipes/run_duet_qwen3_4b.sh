#!/usr/bin/env bash
# DUET with M = Qwen3-4B (the paper's smaller M) and m = Qwen3-0.6B; everything else as run_duet_qwen3.sh.
#   bash recipes/run_duet_qwen3_4b.sh [hydra overrides]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MODEL_LARGE=${MODEL_LARGE:-Qwen/Qwen3-4B}
# 4B: one GPU per vLLM replica is enough (8 GB of bf16 weights), twice the replicas of TP=2.
export TP_LARGE=${TP_LARGE:-1}
exec bash "$here/run_duet_qwen3.sh" "$@"
