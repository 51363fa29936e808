#!/usr/bin/env bash
# The test command (CI's): build (or reuse) the virtualenv .venv from locks/main.txt and install duet-verl into it
# (recipes/setup_env.sh), lint, and run the suite; then the vLLM suite (verl's vLLM rollout on CPU) in its own
# environment, .venv-vllm (tests/vllm/setup_env.sh, ~7 GB). 53-90 minutes on 2 cores.
#   bash tests/setup_and_run.sh [pytest args...]
# With pytest args only the main suite runs, unless VLLM_SUITE=1; VLLM_SUITE=0 skips the vLLM suite always.
# The lock pins every package, torch's CPU build included; on a machine where pip cannot find that build, point pip
# at PyTorch's CPU index:  TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash tests/setup_and_run.sh
# Knobs: PYTHON, VENV (.venv), VLLM_VENV (.venv-vllm), VLLM_SUITE, TORCH_INDEX_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
  sed -n '2,/^set -euo pipefail/p' "$0" | sed -n 's/^# \{0,1\}//p'
  exit 0
fi

bash recipes/setup_env.sh
# shellcheck disable=SC1091
source "${VENV:-.venv}/bin/activate"

ruff check .
ruff format --check .
vllm_suite=${VLLM_SUITE:-$([ $# -eq 0 ] && echo 1 || echo 0)}
if [ "$vllm_suite" = 1 ]; then
  # The vLLM suite's environment installs (network and disk, ~7 GB) while the main suite runs (CPU).
  (bash tests/vllm/setup_env.sh > .venv-vllm.setup.log 2>&1; echo $? > .venv-vllm.setup.status) &
  vllm_setup=$!
fi
python -m pytest "$@"

if [ "$vllm_suite" = 1 ]; then
  wait "$vllm_setup"
  cat .venv-vllm.setup.log
  [ "$(cat .venv-vllm.setup.status)" = 0 ] || { echo "the vLLM suite's environment did not build (above)" >&2; exit 1; }
  deactivate
  "${VLLM_VENV:-.venv-vllm}/bin/python" -m pytest -m "vllm or environment" tests/vllm tests/test_locks.py
fi
