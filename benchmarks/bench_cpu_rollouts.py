"""The CPU backend's two rollouts side by side: a tiny DUET run on the ``hf`` server and on verl's vLLM rollout.

    python benchmarks/bench_cpu_rollouts.py [--steps 6] [--out /tmp/bench_cpu_rollouts]

Runs the tiny DUET recipe's training (``recipes/run_duet_cpu_tiny.sh``'s overrides, one ``duet_verl.main``
process) once per rollout (``CPU_ROLLOUT=hf|vllm``), needs the vLLM suite's
environment (``tests/vllm/setup_env.sh``: it has both), and prints per rollout the run's wall time, its
start-up (wall minus the steps), the mean step after the first (the first pays for warm-up) and the mean
generation time per step of M, m and m's baseline answers. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from duet_verl.cpu.overrides import CpuRun, duet_tiny
from duet_verl.experiments.runs import train
from duet_verl.testing.run_log import later_step_times
from duet_verl.worlds.tiny import build_once


def run(rollout: str, steps: int, out: Path) -> dict:
    cpu = CpuRun(rollout=rollout, tiny_dir=out / "tiny")
    build_once(cpu.tiny_dir)
    recipe = duet_tiny(cpu, steps=steps, n=2, k=2, batch=2, lr="1e-4", out_dir=out / rollout)
    start = time.perf_counter()
    try:
        metrics = train("duet_verl.main", [*recipe, "trainer.test_freq=-1"], out / rollout, cpu)
    except RuntimeError as error:
        raise SystemExit(f"{rollout} run failed: {error}") from None
    wall = time.perf_counter() - start
    step, generation = later_step_times(metrics)
    return {
        "rollout": rollout,
        "wall_s": round(wall, 1),
        "startup_s": round(wall - sum(m["timing_s/step"] for m in metrics.values()), 1),
        "first_step_s": round(metrics[1]["timing_s/step"], 2),
        "step_s": round(step, 2),
        "generation_s": round(generation, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_cpu_rollouts"))
    args = parser.parse_args()
    results = [run(rollout, args.steps, args.out) for rollout in ("hf", "vllm")]
    print("| rollout | wall (s) | start-up (s) | first step (s) | later steps (s) | generation per step (s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rollout']} | {r['wall_s']} | {r['startup_s']} | {r['first_step_s']} | {r['step_s']} | "
              f"{r['generation_s']} |")  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    main()
