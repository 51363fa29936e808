#!/usr/bin/env bash
# Build (or reuse) the CPU environment the main job and the test suite run in: the virtualenv .venv from the lock
# locks/main.txt (torch's CPU build, verl 0.9.1 and every other package at an exact version; a few minutes and a
# few GB the first time, reused while the lock is unchanged), with duet-verl installed into it from this checkout.
#   bash recipes/setup_env.sh && . .venv/bin/activate
# Knobs: PYTHON (a CPython 3.11, the locks' Python), VENV (.venv), TORCH_INDEX_URL (where pip cannot find torch's CPU
# build: https://download.pytorch.org/whl/cpu). The vLLM suite's environment is another: bash tests/vllm/setup_env.sh.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"  # --help
cd "$(dirname "$0")/.."
# shellcheck source=../locks/locked_env.sh
source locks/locked_env.sh
locked_env "${VENV:-.venv}" locks/main.txt ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}
install_project
echo "[${VENV:-.venv}] ready: . ${VENV:-.venv}/bin/activate"
