"""A DUET step in the learning world on the CPU ``hf`` rollout: requests served one at a time vs batched.

    python benchmarks/bench_world_step.py --world DIR --models DIR [--steps 8]

``--world``/``--models``: a built world and its warm-started ``large/`` and ``small/`` (e.g. the ``world`` and
``warm`` folders ``benchmarks/learning_world.py`` writes). Runs the same short DUET training twice, with
``rollout.max_num_seqs=1`` for both models (one ``generate()`` per request: the server before batching) and
with the default cap, and prints the mean step and generation times over the steps after the first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from duet_verl.experiments.runs import Settings, train_duet
from duet_verl.testing.run_log import later_step_times
from duet_verl.worlds.learning import world_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_world_step"))
    args = parser.parse_args()
    models = {size: args.models / size for size in ("large", "small")}
    settings = Settings(steps=args.steps)
    print("| hf server | step (s) | generation per step (s) |\n|---|---|---|")
    for label, cap in (("one request at a time", ["max_num_seqs=1"]), ("batched (default cap)", [])):
        extra = tuple(f"{block}.rollout.{c}" for c in cap for block in ("actor_rollout_ref", "small_actor_rollout_ref"))
        curves = train_duet(world_paths(args.world), models, args.out / label.split()[0], settings, extra)
        step, generation = later_step_times(curves)
        print(f"| {label} | {step:.2f} | {generation:.2f} |", flush=True)


if __name__ == "__main__":
    main()
