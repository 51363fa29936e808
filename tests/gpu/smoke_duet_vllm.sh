#!/usr/bin/env bash
# GPU smoke test of the vLLM path: one DUET step + validation on one GPU with two small models, both served by
# vLLM with tagged server names (vllm_large_server_*, vllm_small_server_*), sleeping in turn.
#   LARGE_MODEL=Qwen/Qwen3-0.6B SMALL_MODEL=Qwen/Qwen3-0.6B DATA_DIR=~/data/duet/gsm8k bash tests/gpu/smoke_duet_vllm.sh
# Needs: a CUDA torch, pip install -e ".[gpu]", nvidia-smi, and a prepared parquet set
# (python -m duet_verl.data_prep.gsm8k, or any DUET parquet with train.parquet/test.parquet). Models may be hub ids
# or local folders.
#
# Sleep is exercised, not assumed: M's and m's engines ask for 0.55 + 0.5 of the GPU, which cannot both be awake,
# and nvidia-smi samples memory.used during the run; memory_trace.py then requires a drop of at least a quarter
# of the GPU for every "[duet] rollout engine asleep" line the trainer printed. Samples, log, metrics: $OUT_DIR.
# Sized for an 80 GB GPU: a wake must find its share free beside both models' FSDP state (~20 GB with Adam).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
LARGE_MODEL=${LARGE_MODEL:-Qwen/Qwen3-0.6B}
SMALL_MODEL=${SMALL_MODEL:-Qwen/Qwen3-0.6B}
DATA_DIR=${DATA_DIR:-$HOME/data/duet/gsm8k}
OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/duet_gpu_smoke}
# the GPU the run lands on: the first visible one (an index or a UUID, both of which nvidia-smi --id takes)
visible=${CUDA_VISIBLE_DEVICES:-0}
GPU=${GPU:-${visible%%,*}}

command -v nvidia-smi >/dev/null || { echo "smoke_duet_vllm.sh needs nvidia-smi" >&2; exit 1; }
mkdir -p "$OUT_DIR"
samples=$OUT_DIR/gpu_memory.csv
train_log=$OUT_DIR/train.log
: >"$samples"

# One nvidia-smi call per sample: each exits and flushes, so a killed sampler loses nothing; a failed call is
# a missing sample, and memory_trace.py fails the run if samples are missing altogether.
(
  while true; do
    nvidia-smi --id="$GPU" --query-gpu=memory.used,memory.total --format=csv,noheader,nounits >>"$samples" || true
    sleep 0.25
  done
) &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT

# free_cache_engine=True is what makes verl put a vLLM server to sleep (vllm_async_server.py:854); sleep mode
# itself is RolloutConfig.enable_sleep_mode, True by default (verl/workers/config/rollout.py:268). FSDP2 and
# chunked entropy as in recipes/common_gpu.sh, so this run also checks the recipes' engine against vLLM.
RAY_DEDUP_LOGS=0 VERL_FILE_LOGGER_PATH=$OUT_DIR/metrics.jsonl python -m duet_verl.main \
  "data.train_files=$DATA_DIR/train.parquet" \
  "data.val_files=$DATA_DIR/test.parquet" \
  data.train_batch_size=4 data.val_batch_size=8 data.val_max_samples=8 \
  data.max_prompt_length=256 data.max_response_length=512 \
  "actor_rollout_ref.model.path=$LARGE_MODEL" \
  actor_rollout_ref.actor.ppo_mini_batch_size=4 actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n=2 \
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 actor_rollout_ref.rollout.gpu_memory_utilization=0.55 \
  actor_rollout_ref.rollout.free_cache_engine=True \
  "small_actor_rollout_ref.model.path=$SMALL_MODEL" \
  small_actor_rollout_ref.actor.ppo_mini_batch_size=4 small_actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  small_actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
  small_actor_rollout_ref.rollout.response_length=256 \
  small_actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
  small_actor_rollout_ref.rollout.gpu_memory_utilization=0.5 small_actor_rollout_ref.rollout.free_cache_engine=True \
  duet.small_rollouts_per_signal=2 \
  actor_rollout_ref.actor.strategy=fsdp2 actor_rollout_ref.ref.strategy=fsdp2 \
  small_actor_rollout_ref.actor.strategy=fsdp2 \
  actor_rollout_ref.actor.entropy_from_logits_with_chunking=True \
  small_actor_rollout_ref.actor.entropy_from_logits_with_chunking=True \
  trainer.n_gpus_per_node=1 trainer.nnodes=1 trainer.total_training_steps=1 trainer.test_freq=1 \
  trainer.val_before_train=False trainer.save_freq=-1 'trainer.logger=[console,file]' \
  "trainer.default_local_dir=$OUT_DIR/checkpoints" \
  "$@" 2>&1 | tee "$train_log"

kill "$sampler"
wait "$sampler" 2>/dev/null || true
python "$here/memory_trace.py" --samples "$samples" --log "$train_log"
