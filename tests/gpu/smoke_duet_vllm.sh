#!/usr/bin/env bash
# GPU smoke test of the vLLM path: one DUET step + validation on one GPU with two small models, both served by
# vLLM with tagged server names (vllm_large_server_*, vllm_small_server_*), sleeping in turn.
#   LARGE_MODEL=Qwen/Qwen3-0.6B SMALL_MODEL=Qwen/Qwen3-0.6B DATA_DIR=~/data/duet/gsm8k bash tests/gpu/smoke_duet_vllm.sh
# Needs: a CUDA torch, pip install -e ".[gpu]", and a prepared parquet set (python -m data_prep.gsm8k, or any
# DUET parquet with train.parquet/test.parquet). Models may be hub ids or local folders.
set -euo pipefail

LARGE_MODEL=${LARGE_MODEL:-Qwen/Qwen3-0.6B}
SMALL_MODEL=${SMALL_MODEL:-Qwen/Qwen3-0.6B}
DATA_DIR=${DATA_DIR:-$HOME/data/duet/gsm8k}
OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/duet_gpu_smoke}

python -m duet_verl.main \
  "data.train_files=$DATA_DIR/train.parquet" \
  "data.val_files=$DATA_DIR/test.parquet" \
  data.train_batch_size=4 data.val_batch_size=8 data.val_max_samples=8 \
  data.max_prompt_length=256 data.max_response_length=512 \
  "actor_rollout_ref.model.path=$LARGE_MODEL" \
  actor_rollout_ref.actor.ppo_mini_batch_size=4 actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n=2 \
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 actor_rollout_ref.rollout.gpu_memory_utilization=0.3 \
  "small_actor_rollout_ref.model.path=$SMALL_MODEL" \
  small_actor_rollout_ref.actor.ppo_mini_batch_size=4 small_actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  small_actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
  small_actor_rollout_ref.rollout.response_length=256 \
  small_actor_rollout_ref.rollout.tensor_model_parallel_size=1 small_actor_rollout_ref.rollout.gpu_memory_utilization=0.2 \
  duet.small_rollouts_per_signal=2 \
  trainer.n_gpus_per_node=1 trainer.nnodes=1 trainer.total_training_steps=1 trainer.test_freq=1 \
  trainer.val_before_train=False trainer.save_freq=-1 trainer.logger=console \
  "trainer.default_local_dir=$OUT_DIR/checkpoints" \
  "$@"
