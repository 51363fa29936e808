#!/usr/bin/env bash
# Evaluate a DUET pair (or base Qwen3-8B / Qwen3-0.6B) on the paper's five benchmarks with the paper's settings:
# M max 16384 new tokens, temperature 0.6, top_p 0.95, top_k 20; m max 2048 new tokens, greedy; vLLM.
# As in the paper's tables, `large` and `concise` are base M alone (BASE_LARGE) and `duet` is the trained pair
# (LARGE, SMALL); base M runs first and is released before the pair loads.
# Rerun the same command to resume an interrupted run. Extra arguments pass through to the CLI:
#   LARGE=ckpt/M SMALL=ckpt/m OUT_DIR=eval/step300 bash recipes/eval_duet_qwen3.sh --seeds 4
#   MODES="duet large small concise" bash recipes/eval_duet_qwen3.sh --max-samples 20
set -euo pipefail

LARGE=${LARGE:-Qwen/Qwen3-8B}                 # M for duet: a trained checkpoint folder (HF format) or a hub id
BASE_LARGE=${BASE_LARGE:-Qwen/Qwen3-8B}       # M alone (large, concise): base M; = LARGE shares M's responses
SMALL=${SMALL:-Qwen/Qwen3-0.6B}               # m
DATA_DIR=${DATA_DIR:-$HOME/data/duet}         # from: python -m data_prep.prepare_all
BENCHMARKS=${BENCHMARKS:-"math500 aime24 aime25 amc23 gpqa_diamond"}
MODES=${MODES:-"duet large small concise"}
OUT_DIR=${OUT_DIR:-eval/duet_qwen3}
BACKEND=${BACKEND:-vllm}
TP=${TP:-1}                                    # tensor parallel size of each engine
SMALL_TEMPLATE=${SMALL_TEMPLATE:-paper}        # paper | chat_think
SMALL_QUESTION=${SMALL_QUESTION:-as_prompted}  # m reads the question with its \boxed{} instruction, as the authors' m
LARGE_GPU_MEMORY=${LARGE_GPU_MEMORY:-0.6}      # both engines share the GPU(s)
SMALL_GPU_MEMORY=${SMALL_GPU_MEMORY:-0.25}

data=()
for name in $BENCHMARKS; do
  file="$DATA_DIR/$name/test.parquet"
  if [[ ! -f "$file" ]]; then
    echo "error: $file is missing; prepare it with: python -m data_prep.prepare_all --only $name" >&2
    exit 2
  fi
  data+=("$file")
done

read -r -a modes <<<"$MODES"
exec python -m duet_verl.evaluate \
  --large "$LARGE" --base-large "$BASE_LARGE" --small "$SMALL" \
  --data "${data[@]}" \
  --modes "${modes[@]}" \
  --out "$OUT_DIR" \
  --backend "$BACKEND" --tp "$TP" \
  --small-template "$SMALL_TEMPLATE" --small-question "$SMALL_QUESTION" \
  --large-max-tokens 16384 --large-temperature 0.6 --large-top-p 0.95 --large-top-k 20 \
  --small-max-tokens 2048 --small-temperature 0 \
  --large-gpu-memory "$LARGE_GPU_MEMORY" --small-gpu-memory "$SMALL_GPU_MEMORY" \
  "$@"
