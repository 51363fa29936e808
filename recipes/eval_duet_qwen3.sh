#!/usr/bin/env bash
# Evaluate a DUET pair (or base Qwen3-8B / Qwen3-0.6B) on the paper's five benchmarks with the paper's settings:
# M max 16384 new tokens, temperature 0.6, top_p 0.95, top_k 20; m max 2048 new tokens, greedy; vLLM.
# As in the paper's tables, `large` and `concise` are base M alone (MODEL_BASE_LARGE) and `duet` is the trained pair
# (MODEL_LARGE, MODEL_SMALL); base M runs first and is released before the pair loads.
# Rerun the same command to resume an interrupted run. Extra arguments pass through to the CLI:
#   MODEL_LARGE=ckpt/M MODEL_SMALL=ckpt/m OUT_DIR=eval/step300 bash recipes/eval_duet_qwen3.sh --samples 4
#   MODES=duet,large,small,concise bash recipes/eval_duet_qwen3.sh --max-samples 20
# The knobs share the training recipes' names (recipes/common_gpu.sh); lists are comma-separated.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"  # --help
refuse_renamed LARGE=MODEL_LARGE BASE_LARGE=MODEL_BASE_LARGE SMALL=MODEL_SMALL DATA_DIR=DATA_ROOT TP=TP_LARGE \
  LARGE_GPU_MEMORY=GPU_MEM_LARGE SMALL_GPU_MEMORY=GPU_MEM_SMALL

MODEL_LARGE=${MODEL_LARGE:-Qwen/Qwen3-8B}            # M for duet: a trained checkpoint folder (HF format) or a hub id
MODEL_BASE_LARGE=${MODEL_BASE_LARGE:-Qwen/Qwen3-8B}  # M alone (large, concise): base M; = MODEL_LARGE shares M's responses
MODEL_SMALL=${MODEL_SMALL:-Qwen/Qwen3-0.6B}          # m
DATA_ROOT=${DATA_ROOT:-$HOME/data/duet}              # from: python -m duet_verl.data_prep.prepare_all
BENCHMARKS=${BENCHMARKS:-math500,aime24,aime25,amc23,gpqa_diamond}
MODES=${MODES:-duet,large,small,concise}
OUT_DIR=${OUT_DIR:-eval/duet_qwen3}
BACKEND=${BACKEND:-vllm}
TP_LARGE=${TP_LARGE:-1}                              # tensor parallel size of M's engines (base M's too)
TP_SMALL=${TP_SMALL:-1}                              # of m's engine
SMALL_TEMPLATE=${SMALL_TEMPLATE:-paper}              # paper | chat_think
SMALL_QUESTION=${SMALL_QUESTION:-as_prompted}        # m reads the question with its \boxed{} instruction, as the authors' m
GPU_MEM_LARGE=${GPU_MEM_LARGE:-0.6}                  # both engines share the GPU(s)
GPU_MEM_SMALL=${GPU_MEM_SMALL:-0.25}

for list in BENCHMARKS MODES; do
  if [[ ${!list} =~ [[:space:]] ]]; then
    echo "error: $list is comma-separated (e.g. ${!list// /,}), as VAL_DATA and data_prep's --only are" >&2
    exit 2
  fi
done
IFS=, read -r -a benchmarks <<<"$BENCHMARKS"
IFS=, read -r -a modes <<<"$MODES"
data=()
missing=()
for name in "${benchmarks[@]}"; do
  file="$DATA_ROOT/$name/test.parquet"
  if [[ -f "$file" ]]; then data+=("$file"); else missing+=("$name"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: not prepared under $DATA_ROOT: ${missing[*]}; prepare them with:" \
    "python -m duet_verl.data_prep.prepare_all --only $(IFS=,; echo "${missing[*]}") --output-root $DATA_ROOT" >&2
  exit 2
fi

exec python -m duet_verl.evaluate \
  --large "$MODEL_LARGE" --base-large "$MODEL_BASE_LARGE" --small "$MODEL_SMALL" \
  --data "${data[@]}" \
  --modes "${modes[@]}" \
  --out "$OUT_DIR" \
  --backend "$BACKEND" --large-tp "$TP_LARGE" --small-tp "$TP_SMALL" \
  --small-template "$SMALL_TEMPLATE" --small-question "$SMALL_QUESTION" \
  --large-max-tokens 16384 --large-temperature 0.6 --large-top-p 0.95 --large-top-k 20 \
  --small-max-tokens 2048 --small-temperature 0 \
  --large-gpu-memory "$GPU_MEM_LARGE" --small-gpu-memory "$GPU_MEM_SMALL" \
  "$@"
