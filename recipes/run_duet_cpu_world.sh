#!/usr/bin/env bash
# The CPU main job: DUET trains the division-of-labour world's warm-started pair (M: 4 layers, m: 2 layers; shipped
# with duet-verl) through the real verl stack, the real scorer and the duet-verl CPU backend, and shows the method:
# λ rises, M's signal shrinks to what m needs, m's accuracy holds (about 4 minutes on 2 cores).
# Prints every step's metrics, a held-out validation before the first step and after the last, and a summary.
# Extra hydra overrides pass through to the DUET run:
#   STEPS=20 bash recipes/run_duet_cpu_world.sh duet.lambda_eta=0.1
set -euo pipefail

STEPS=${STEPS:-30}
OUT_DIR=${OUT_DIR:-${TMPDIR:-/tmp}/duet_cpu_world}

exec python -m duet_verl.testing.labour_pair --out "$OUT_DIR" --steps "$STEPS" "$@"
