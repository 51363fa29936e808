"""Time CPU DUET steps by phase and report the driver-side overhead.

    python benchmarks/bench_duet_step.py [--steps 3] [hydra overrides for the tiny DUET run ...]

Runs the tiny CPU DUET recipe's training (``recipes/run_duet_cpu_tiny.sh``'s overrides, one ``duet_verl.main``
process) and reads verl's per-step timings. Driver-side overhead is everything in a
step that is not generation, log-prob computation or a model update (weight syncs, signal extraction, batch
building, rewards, advantages, data movement), printed as a fraction of the step; steps after the first are
averaged (the first includes warm-up).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from duet_verl.cpu.overrides import CPU_DEFAULTS, duet_tiny
from duet_verl.experiments.runs import train
from duet_verl.worlds.tiny import build_once

WORK = ("gen_large", "gen_small", "gen_baseline", "old_log_prob_large", "old_log_prob_small", "ref_large",
        "update_large", "update_small")  # fmt: skip
OTHER = ("sync_weights_large", "sync_weights_small", "duet_rewards")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        build_once(CPU_DEFAULTS.tiny_dir)
        recipe = duet_tiny(CPU_DEFAULTS, steps=args.steps, n=2, k=2, batch=2, lr="1e-4", out_dir=out)
        try:
            metrics = train("duet_verl.main", [*recipe, "trainer.test_freq=-1", *overrides], out, CPU_DEFAULTS)
        except RuntimeError as error:
            sys.exit(f"DUET run failed: {error}")
    steps = [s for s in sorted(metrics) if s > 1] or sorted(metrics)
    mean = {name: np.mean([metrics[s].get(f"timing_s/{name}", 0.0) for s in steps]) for name in (*WORK, *OTHER, "step")}
    print(f"DUET CPU step, mean over steps {steps} (seconds):")
    for name in (*WORK, *OTHER):
        print(f"  {name:<22} {mean[name]:7.3f}  ({mean[name] / mean['step']:6.1%})")
    overhead = mean["step"] - sum(mean[name] for name in WORK)
    print(f"  {'step':<22} {mean['step']:7.3f}")
    print(
        f"driver-side overhead (not generation, log-prob or update): {overhead:.3f} s = {overhead / mean['step']:.1%}"
    )


if __name__ == "__main__":
    main()
