# shellcheck shell=bash
# Shared by every recipe (sourced through common_cpu.sh and common_gpu.sh).
# DRY_RUN=1 prints the hydra overrides, one per line, and launches nothing: tests/recipes composes them
# against the trainer's config, so a typo or a key verl 0.9 ignores fails in CI instead of on a cluster.

# Single-model runs (verl.trainer.main_ppo) score M's own answers with the DUET scorer, as DUET scores m's: verl's
# default scorer knows neither deepscaler nor GPQA. A reward.custom_reward_function, when set, replaces it.
# shellcheck disable=SC2034  # read by the recipes that source this file
duet_reward_overrides=(
  reward.reward_manager.source=importlib
  reward.reward_manager.name=DuetRewardManager
  reward.reward_manager.module.path=pkg://duet_verl.train.reward_manager
)

is_dry_run() { [ "${DRY_RUN:-0}" = 1 ]; }

# recipe_help: `bash recipes/X.sh --help` (or -h) prints the recipe's header comment and every knob it reads, with
# its default and comment (the NAME=${NAME:-default} lines of the recipe and of the shared files it sources), and
# runs nothing. Called as this file is sourced, with the recipe's arguments.
recipe_help() {
  local recipe=${BASH_SOURCE[-1]} file
  sed -n '2,/^set -euo pipefail/p' "$recipe" | sed -n 's/^# \{0,1\}//p'
  echo
  echo "Knobs: environment variables (NAME=value bash $recipe ...); defaults after '='. Hydra overrides after the"
  echo "recipe's name pass through to the trainer."
  for file in "$recipe" "${BASH_SOURCE[@]:1}"; do
    sed -n -E 's/^(export )?([A-Z][A-Z0-9_]*)=\$\{[A-Z0-9_]+:-(.*)\}( *#(.*))?$/  \2=\3    # \5/p' "$file"
  done | sed -E 's/ +# *$//' | awk '!seen[$1]++'
}
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
  recipe_help
  exit 0
fi

# refuse_renamed OLD=NEW...: stop, naming the new knob, when an old name is set (nothing is renamed silently).
refuse_renamed() {
  local pair
  for pair in "$@"; do
    if [ -n "$(printenv "${pair%%=*}")" ]; then
      echo "error: ${pair%%=*} is now ${pair#*=} (the training recipes' name); set ${pair#*=} instead" >&2
      exit 2
    fi
  done
}

# Environment variables a Ray job carries to every node (`ray job submit --runtime-env-json`): NAME sends this
# shell's value when set; NAME=DEFAULT sends DEFAULT when it is not. The CPU and GPU settings append theirs, and
# RAY_JOB_ENV adds names of your own (space-separated, e.g. RAY_JOB_ENV="WANDB_API_KEY WANDB_ENTITY"); a job's
# runtime env is visible to anyone who can read the Ray dashboard.
job_env=(HYDRA_FULL_ERROR=1 HF_HOME HF_HUB_OFFLINE)

# json_string VALUE: VALUE as a JSON string (backslashes, quotes and control characters escaped).
json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# job_runtime_env: the runtime env JSON of `ray job submit`, {"env_vars": {...}} from job_env.
job_runtime_env() {
  local entry name value pairs=() extra=()
  read -r -a extra <<<"${RAY_JOB_ENV:-}"
  for entry in "${job_env[@]}" "${extra[@]}"; do
    name=${entry%%=*}
    if [ -n "${!name:-}" ]; then
      value=${!name}
    elif [ "$entry" != "$name" ]; then
      value=${entry#*=}
    else
      continue
    fi
    pairs+=("$(json_string "$name"): $(json_string "$value")")
  done
  local IFS=,
  echo "{\"env_vars\": {${pairs[*]}}}"
}

# launch_local MODULE OVERRIDE...: `python -m MODULE OVERRIDE...` on this machine (or print under DRY_RUN). Python
# replaces this shell (exec), so a scheduler's signal to the recipe's process reaches the trainer's driver, which
# checkpoints and exits with 75 (docs/clusters.md, "Preemption"); a shell waiting on it would die and leave it running.
launch_local() {
  local module=$1
  shift
  if is_dry_run; then
    printf '%s\n' "$@"
    return 0
  fi
  exec python -m "$module" "$@"
}

# launch MODULE OVERRIDE...: with RAY_ADDRESS set (the dashboard, e.g. http://head:8265), submit to that Ray
# cluster as a job; otherwise run here and let the trainer start a local Ray. DRY_RUN=1 prints the overrides.
# A recipe that already is a Ray job's entrypoint (a KubeRay RayJob, `ray job submit -- bash recipes/...`) runs
# here too: Ray set RAY_ADDRESS to its cluster, which the trainer joins.
# Every recipe, CPU or GPU, launches through here: the cluster path is the same code. Submitted, the recipe follows
# the job's log and exits with the driver's own status, as a local run does: 0 done, 75 stopped after a checkpoint
# (what the SLURM launcher requeues on), anything else failed (`ray job submit` itself says 1 for every failure).
#   RAY_NO_WAIT=1        return once submitted; follow with `ray job logs -f JOB_ID`, stop with `ray job stop JOB_ID`
#   RAY_SUBMISSION_ID=X  the job's id (unique per submission; duet-<UTC time>-<pid> otherwise)
# Ray runs the entrypoint through a shell: overrides holding $, ` or " need escaping (e.g. \${...}). The job's
# paths (data, models, OUT_DIR) are read on the cluster's nodes: on several nodes, a filesystem all of them mount.
launch() {
  local module=$1
  shift
  if is_dry_run || [ -z "${RAY_ADDRESS:-}" ] || [ -n "${RAY_JOB_CONFIG_JSON_ENV_VAR:-}" ]; then
    launch_local "$module" "$@"
    return
  fi
  local id=${RAY_SUBMISSION_ID:-duet-$(date -u +%Y%m%d-%H%M%S)-$$}
  local submit=(ray job submit --address "$RAY_ADDRESS" --submission-id "$id" --runtime-env-json "$(job_runtime_env)")
  if [ "${RAY_NO_WAIT:-0}" = 1 ]; then
    "${submit[@]}" --no-wait -- python -m "$module" "$@"
    return
  fi
  "${submit[@]}" -- python -m "$module" "$@" || true  # its status says only failed or not: the driver's says why
  exit "$(job_exit_status "$RAY_ADDRESS" "$id")"
}

# job_exit_status DASHBOARD JOB_ID: the exit status of a finished job's driver (1 when Ray has none: the job never
# started, or Ray stopped it).
job_exit_status() {
  python - "$1" "$2" <<'PY'
import sys

try:
    from ray.job_submission import JobStatus, JobSubmissionClient

    info = JobSubmissionClient(sys.argv[1]).get_job_info(sys.argv[2])
    code = info.driver_exit_code
    print(code if code is not None else 0 if info.status == JobStatus.SUCCEEDED else 1)
except Exception as error:  # no such job: the submission itself failed (its message is above)
    print(f"could not read job {sys.argv[2]}'s status: {error}", file=sys.stderr)
    print(1)
PY
}
