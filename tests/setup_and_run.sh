#!/usr/bin/env bash
# Set up (or reuse) the virtualenv .venv, install torch + duet-verl with test extras, lint, and run the suite;
# then the vLLM suite (verl's vLLM rollout on CPU) in its own environment, .venv-vllm (tests/vllm/setup_env.sh).
#   bash tests/setup_and_run.sh [pytest args...]
# With pytest args only the main suite runs, unless VLLM_SUITE=1; VLLM_SUITE=0 skips the vLLM suite always.
# torch comes first and on its own: the CPU wheel here; on a machine without it on disk, point pip at the
# CPU index:  TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash tests/setup_and_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
pip_quiet=(pip install --quiet --disable-pip-version-check)
"${pip_quiet[@]}" --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  "${pip_quiet[@]}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$TORCH_SPEC"
fi
"${pip_quiet[@]}" -e ".[test]"

ruff check .
ruff format --check .
vllm_suite=${VLLM_SUITE:-$([ $# -eq 0 ] && echo 1 || echo 0)}
python -m pytest "$@"

if [ "$vllm_suite" = 1 ]; then
  deactivate
  bash tests/vllm/setup_env.sh
  "${VLLM_VENV:-.venv-vllm}/bin/python" -m pytest -m vllm tests/vllm
fi
