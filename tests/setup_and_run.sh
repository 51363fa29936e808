#!/usr/bin/env bash
# Build (or reuse) the virtualenv .venv from locks/main.txt, install duet-verl into it, lint, and run the suite;
# then the vLLM suite (verl's vLLM rollout on CPU) in its own environment, .venv-vllm (tests/vllm/setup_env.sh).
#   bash tests/setup_and_run.sh [pytest args...]
# With pytest args only the main suite runs, unless VLLM_SUITE=1; VLLM_SUITE=0 skips the vLLM suite always.
# The lock pins every package, torch's CPU build included; on a machine where pip cannot find that build, point pip
# at PyTorch's CPU index:  TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash tests/setup_and_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=locked_env.sh
source tests/locked_env.sh
locked_env "${VENV:-.venv}" locks/main.txt ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}
install_project

ruff check .
ruff format --check .
vllm_suite=${VLLM_SUITE:-$([ $# -eq 0 ] && echo 1 || echo 0)}
python -m pytest "$@"

if [ "$vllm_suite" = 1 ]; then
  deactivate
  bash tests/vllm/setup_env.sh
  "${VLLM_VENV:-.venv-vllm}/bin/python" -m pytest -m "vllm or environment" tests/vllm tests/test_locks.py
fi
