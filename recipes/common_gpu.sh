# shellcheck shell=bash
# Shared settings of the GPU recipes (run_duet_qwen3*.sh, run_grpo_baseline_qwen3.sh): the paper's
# hyperparameters (docs/method.md "Hyperparameters"), data, memory layout for 8×H100, and the launcher.
# Every knob below is an environment variable; hydra overrides given to a recipe are appended last and win.
# shellcheck disable=SC2034  # the arrays are read by the recipes that source this file
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# --- cluster -----------------------------------------------------------------------------------------------
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
# what a submitted job (RAY_ADDRESS) sets on every node, besides common.sh's
job_env+=(TOKENIZERS_PARALLELISM=true NCCL_DEBUG=WARN NCCL_SOCKET_IFNAME NCCL_IB_HCA VLLM_LOGGING_LEVEL=WARN)

# --- data (prepared by data_prep; see docs/data_prep.md) -------------------------------------
DATA_ROOT=${DATA_ROOT:-$HOME/data/duet}      # on a multi-node cluster: a filesystem every node mounts
TRAIN_DATA=${TRAIN_DATA:-deepscaler}         # or dapo_math17k, math_lighteval
VAL_DATA=${VAL_DATA:-math500,aime24}         # the paper's validation: MATH test + AIME24
TRAIN_FILE=$DATA_ROOT/$TRAIN_DATA/train.parquet
IFS=, read -r -a val_names <<<"$VAL_DATA"
val_files=()
for name in "${val_names[@]}"; do val_files+=("$DATA_ROOT/$name/test.parquet"); done
VAL_FILES="[$(IFS=,; echo "${val_files[*]}")]"   # data.val_files takes a list

# --- the paper's settings ----------------------------------------------------------------------------------
TRAIN_BATCH=${TRAIN_BATCH:-64}               # questions per step
# Mini-batches count questions for both models (verl's ppo_mini_batch_size × rollout.n rows). The authors' M
# mini-batch is 32 questions × N = 128 responses (2 optimizer steps per step); their m mini-batch is 32 M responses
# × K = 128 answers = 8 questions × N·K (8 optimizer steps per step). The trainer prints both counts at start.
MINI_BATCH=${MINI_BATCH:-32}                 # M: questions per PPO mini-batch
N=${N:-4}                                    # M responses per question
K=${K:-4}                                    # m answers per M response
SMALL_MINI_BATCH=${SMALL_MINI_BATCH:-$((MINI_BATCH / N))}  # m: questions per PPO mini-batch (N·K answers each)
MAX_PROMPT=${MAX_PROMPT:-512}
MAX_RESPONSE=${MAX_RESPONSE:-8192}           # M's response budget
SMALL_RESPONSE=${SMALL_RESPONSE:-1024}       # m's answer budget (its prompt: MAX_PROMPT + MAX_RESPONSE)
LR_LARGE=${LR_LARGE:-1e-6}
LR_SMALL=${LR_SMALL:-1e-6}
KL_COEF=${KL_COEF:-0.001}                    # KL-in-reward for M against its frozen reference
EPOCHS=${EPOCHS:-3}
TEST_FREQ=${TEST_FREQ:-10}
SAVE_FREQ=${SAVE_FREQ:-50}
LENGTH_BOUND=${LENGTH_BOUND:-1000}           # B
LAMBDA_SCHEDULE=${LAMBDA_SCHEDULE:-adaptive}
LAMBDA_INIT=${LAMBDA_INIT:-0.0}              # λ0 (the paper's constant-λ run: LAMBDA_SCHEDULE=constant LAMBDA_INIT=1.0)
LAMBDA_ETA=${LAMBDA_ETA:-0.01}               # η
MARGINAL_UTILITY=${MARGINAL_UTILITY:-per_signal}
SMALL_TEMPLATE=${SMALL_TEMPLATE:-paper}
# The question m reads in validation: the authors' m reads AIME, AMC and MATH questions with their \boxed{}
# instruction (as M's prompt states them), so val-duet/*/acc compares with the paper's; bare: as in training.
VAL_SMALL_QUESTION=${VAL_SMALL_QUESTION:-as_prompted}

# --- memory for 8×H100 80 GB (estimates: docs/gpus.md, "Memory and time") -----------------------------------
# The trainer keeps at most one vLLM engine awake: sync M → M generates → M sleeps → sync m → m generates →
# m sleeps → train. Sleep is level 2 (weights and KV cache freed), so each engine may take most of the GPU
# while it is awake; what must stay free is what is resident at that moment: M's FSDP state unless offloaded
# (~16 GB/GPU for 8B with Adam over 8 GPUs), m's (~1.2 GB), CUDA context, NCCL buffers and CUDA graphs.
# The paper's 0.85 (M) + 0.25 (m, "stays resident") assumed m's engine awake beside M's; here m's engine
# never overlaps M's, so m gets a large KV cache too (its 2048 answers a step read prompts of up to ~8.7k tokens).
# vLLM needs its fraction free when it starts; M's servers are created and put to sleep before m's are. If an
# engine refuses to start ("free memory ... less than desired"), lower its fraction: these are estimates.
GPU_MEM_LARGE=${GPU_MEM_LARGE:-0.8}        # the paper's 0.85 leaves ~5 GB beside M's engine; 0.8 leaves ~9 (docs/gpus.md)
GPU_MEM_SMALL=${GPU_MEM_SMALL:-0.7}
TP_LARGE=${TP_LARGE:-2}                      # vLLM tensor parallel for M: 4 replicas of 2 GPUs on one node
TP_SMALL=${TP_SMALL:-1}
# 0.8 of the GPU for M's engine leaves no room for M's FSDP state: offload M's actor (params + Adam) to CPU
# between phases (~16 GB/GPU over PCIe, seconds). m's state is small and stays. Reference models always live on
# CPU: verl wraps every forward-only engine in FSDP2's CPUOffloadPolicy whatever param_offload says
# (verl/workers/engine/fsdp/transformer_impl.py:459-463, forward_only set by verl/trainer/config/ref/dp_ref.yaml:20).
OFFLOAD_LARGE=${OFFLOAD_LARGE:-True}
OFFLOAD_SMALL=${OFFLOAD_SMALL:-False}
# LoRA for M (docs/gpus.md "LoRA for M"): a rank > 0 trains an adapter on every linear layer instead of all of M,
# and M's reference becomes its own base with the adapter off (verl's ref_in_actor: no second copy of M). The
# adapter is merged into the weights M's vLLM receives. LoRA usually wants a larger LR_LARGE than full training.
LORA_RANK_LARGE=${LORA_RANK_LARGE:-0}
LORA_ALPHA_LARGE=${LORA_ALPHA_LARGE:-$((2 * LORA_RANK_LARGE))}
# Micro-batches by tokens (use_dynamic_bsz): one M sequence is up to MAX_PROMPT + MAX_RESPONSE = 8704 tokens;
# 2 of them per GPU per backward with gradient checkpointing fit in 80 GB.
LARGE_TOKENS_PER_GPU=${LARGE_TOKENS_PER_GPU:-$(((MAX_PROMPT + MAX_RESPONSE) * 2))}
SMALL_TOKENS_PER_GPU=${SMALL_TOKENS_PER_GPU:-$(((MAX_PROMPT + MAX_RESPONSE + SMALL_RESPONSE) * 4))}
# Log-prob passes (old and reference log-probs) hold a micro-batch's whole bf16 logits tensor, tokens × 151,936
# (Qwen3's vocabulary) × 2 B: 77,824 tokens (twice m's training budget) would be 23.6 GB, plus a 47 GB fp32
# softmax for the entropy verl computes with the old log-probs. Two of the longest sequences (m's: 9728 tokens)
# per micro-batch: 19,456 × 151,936 × 2 B = 5.9 GB, and chunked entropy (below) adds ~1.2 GB per 2048-token
# chunk instead of the fp32 copy. Must be at least the longest sequence (verl's rearrange_micro_batches asserts it).
LOGPROB_TOKENS_PER_GPU=${LOGPROB_TOKENS_PER_GPU:-$(((MAX_PROMPT + MAX_RESPONSE + SMALL_RESPONSE) * 2))}

# --- bookkeeping -------------------------------------------------------------------------------------------
LOGGER=${LOGGER:-[console]}                  # e.g. LOGGER='[console,wandb]' or '[console,tensorboard]'
# Checkpoints kept (the newest; older ones are deleted once a newer one is complete). One DUET checkpoint of
# Qwen3-8B + 0.6B is ~100 GB (fp32 params + Adam), written every SAVE_FREQ steps: 3 epochs keep several TB
# without a bound. 2 keeps one to fall back on if the newest is damaged; 0 or -1 keeps all.
KEEP_CHECKPOINTS=${KEEP_CHECKPOINTS:-2}
PROJECT=${PROJECT:-duet}

# gpu_model_overrides KEY MODEL LR TP GPU_MEM OFFLOAD TOKENS_PER_GPU MINI_BATCH: one model block on GPUs with vLLM.
gpu_model_overrides() {
  local key=$1 model=$2 lr=$3 tp=$4 mem=$5 offload=$6 tokens=$7 mini=$8
  echo "$key.model.path=$model"
  echo "$key.model.use_remove_padding=True"              # flash-attn varlen: no compute on padding
  echo "$key.model.enable_gradient_checkpointing=True"
  echo "$key.actor.optim.lr=$lr"
  echo "$key.actor.ppo_mini_batch_size=$mini"
  echo "$key.actor.use_dynamic_bsz=True"                 # micro-batches packed by token count
  echo "$key.actor.ppo_max_token_len_per_gpu=$tokens"
  echo "$key.rollout.log_prob_max_token_len_per_gpu=$LOGPROB_TOKENS_PER_GPU"
  # entropy in 2048-token fp32 chunks, not one fp32 softmax of the whole micro-batch (transformer_impl.py:178)
  echo "$key.actor.entropy_from_logits_with_chunking=True"
  # FSDP2, as on the CPU path. param_offload moves params to CPU between phases under FSDP2 too
  # (transformer_impl.py:160, 844-871; verl/workers/engine/base.py:315-327); offload_policy stays off (it would keep them on
  # CPU during compute and step Adam there).
  echo "$key.actor.strategy=fsdp2"
  echo "$key.actor.fsdp_config.param_offload=$offload"
  echo "$key.actor.fsdp_config.optimizer_offload=$offload"
  echo "$key.rollout.name=vllm"
  echo "$key.rollout.tensor_model_parallel_size=$tp"
  echo "$key.rollout.gpu_memory_utilization=$mem"
  echo "$key.rollout.temperature=1.0"
}

# M's reference model (KL-in-reward); frozen bf16 weights, on CPU between and during its passes (see above).
gpu_ref_overrides() {
  local key=$1
  echo "$key.ref.strategy=fsdp2"
  echo "$key.ref.log_prob_max_token_len_per_gpu=$LOGPROB_TOKENS_PER_GPU"
}

# M's whole block (actor, rollout, reference), the same in the DUET and the M-alone baseline recipes.
large_model_overrides() {
  gpu_model_overrides actor_rollout_ref "$MODEL_LARGE" "$LR_LARGE" "$TP_LARGE" "$GPU_MEM_LARGE" "$OFFLOAD_LARGE" \
    "$LARGE_TOKENS_PER_GPU" "$MINI_BATCH"
  gpu_ref_overrides actor_rollout_ref
  if [ "$LORA_RANK_LARGE" -gt 0 ]; then
    echo "actor_rollout_ref.model.lora_rank=$LORA_RANK_LARGE"
    echo "actor_rollout_ref.model.lora_alpha=$LORA_ALPHA_LARGE"
    echo "actor_rollout_ref.model.target_modules=all-linear"
    echo "actor_rollout_ref.model.lora.merge=True"
  fi
}

# M's validation sampling: Qwen3 thinking defaults (docs/method.md "Evaluation"). verl 0.9.1's agent loop reads
# val_kwargs' temperature, top_p and top_k only (val_kwargs.do_sample is ignored: temperature 0 is greedy).
large_val_overrides=(
  actor_rollout_ref.rollout.val_kwargs.temperature=0.6
  actor_rollout_ref.rollout.val_kwargs.top_p=0.95
  actor_rollout_ref.rollout.val_kwargs.top_k=20
  actor_rollout_ref.rollout.val_kwargs.n=1
)

data_overrides=(
  "data.train_files=$TRAIN_FILE"
  "data.val_files=$VAL_FILES"
  "data.train_batch_size=$TRAIN_BATCH"
  "data.max_prompt_length=$MAX_PROMPT"
  "data.max_response_length=$MAX_RESPONSE"
  data.filter_overlong_prompts=True                     # drop (not truncate) the rare over-long question
  data.truncation=error
)

# trainer_overrides EXPERIMENT OUT_DIR: schedule, logging, where checkpoints go, resume.
trainer_overrides() {
  local experiment=$1 out=$2
  echo "trainer.nnodes=$NNODES"
  echo "trainer.n_gpus_per_node=$GPUS_PER_NODE"
  echo "trainer.total_epochs=$EPOCHS"
  echo "trainer.test_freq=$TEST_FREQ"
  echo "trainer.save_freq=$SAVE_FREQ"
  echo "trainer.max_actor_ckpt_to_keep=$KEEP_CHECKPOINTS"
  echo "trainer.val_before_train=True"
  echo "trainer.logger=$LOGGER"
  echo "trainer.project_name=$PROJECT"
  echo "trainer.experiment_name=$experiment"
  echo "trainer.default_local_dir=$out/checkpoints"
  echo "trainer.validation_data_dir=$out/validation"    # validation generations, one jsonl per test
  echo "trainer.resume_mode=auto"                       # a rerun continues from the last complete checkpoint
}

# Prepare the datasets the run reads unless their parquet files exist (skipped under DRY_RUN).
prepare_data() {
  is_dry_run && return 0
  local missing=()
  [ -f "$TRAIN_FILE" ] || missing+=("$TRAIN_DATA")
  local i
  for i in "${!val_names[@]}"; do
    [ -f "${val_files[$i]}" ] || missing+=("${val_names[$i]}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "preparing missing datasets into $DATA_ROOT: ${missing[*]}" >&2
  # --skip-bad-rows: DeepScaleR has a few rows without an answer; they are listed in bad_rows.jsonl.
  python -m duet_verl.data_prep.prepare_all --only "$(IFS=,; echo "${missing[*]}")" --output-root "$DATA_ROOT" \
    --skip-bad-rows
}
