# Shared by every recipe (sourced through common_cpu.sh and common_gpu.sh).
# DRY_RUN=1 prints the hydra overrides, one per line, and launches nothing: tests/recipes composes them
# against the trainer's config, so a typo or a key verl 0.9 ignores fails in CI instead of on a cluster.

# Single-model runs (verl.trainer.main_ppo) score M's own answers with the DUET scorer, as DUET scores m's: verl's
# default scorer knows neither deepscaler nor GPQA. A reward.custom_reward_function, when set, replaces it.
# shellcheck disable=SC2034  # read by the recipes that source this file
duet_reward_overrides=(
  reward.reward_manager.source=importlib
  reward.reward_manager.name=DuetRewardManager
  reward.reward_manager.module.path=pkg://duet_verl.reward_manager
)

is_dry_run() { [ "${DRY_RUN:-0}" = 1 ]; }

# launch_local MODULE OVERRIDE...: `python -m MODULE OVERRIDE...` on this machine (or print under DRY_RUN).
launch_local() {
  local module=$1
  shift
  if is_dry_run; then
    printf '%s\n' "$@"
    return 0
  fi
  python -m "$module" "$@"
}
