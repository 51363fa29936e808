"""Build the DUET learning world, warm-start M and m with verl's SFT trainer on CPU, and measure them.

    python benchmarks/warm_start_world.py [--out /tmp/duet_world] [--seeds 0 1]

Per seed: builds the world (``duet_verl.worlds.learning``), warm-starts both models
(``duet_verl.worlds.warm_start``, torchrun + verl's SFT trainer on the CPU backend) and measures with plain
transformers ``generate``: M alone at temperature 1 (4 samples per question), m greedy from each of M's signals,
m from the question alone. Targets: each warm start ≤ 3 min on 2 cores; M alone ≥ 0.8 accuracy on train and
held-out questions; guided m ≥ 0.8; m alone near chance (1/90); M's length std within a group of 4 clearly > 0.
Prints one JSON object per seed and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from duet_verl.worlds.learning import build_world
from duet_verl.worlds.warm_start import measure, warm_start

MAX_WARM_START_S = 180.0


def missed_targets(wall_s: dict, report: dict) -> list[str]:
    missed = [f"{size} warm start took {s:.0f} s" for size, s in wall_s.items() if s > MAX_WARM_START_S]
    for split, r in report.items():
        checks = {
            "large_acc >= 0.8": r["large_acc"] >= 0.8,
            "guided_small_acc >= 0.8": r["guided_small_acc"] >= 0.8,
            "small_alone_acc <= 0.1": r["small_alone_acc"] <= 0.1,
            "large_len_group_std >= 2": r["large_len_group_std"] >= 2.0,
        }
        missed += [f"{split}: {name}" for name, ok in checks.items() if not ok]
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/tmp/duet_world", help="one sub-folder per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    failed = False
    for seed in args.seeds:
        root = Path(args.out) / f"seed{seed}"
        start = time.monotonic()
        paths = build_world(root, seed)
        build_s = time.monotonic() - start
        models = warm_start(paths, root / "models", seed)
        wall_s = json.loads((root / "models" / "warm_start.json").read_text())["wall_s"]
        start = time.monotonic()
        report = measure(root, models, seed=seed)
        measure_s = time.monotonic() - start
        missed = missed_targets(wall_s, report)
        failed |= bool(missed)
        summary = {"build_s": round(build_s, 1), "warm_start_s": wall_s, "measure_s": round(measure_s, 1)}
        print(json.dumps({"seed": seed, **summary, "models": {k: str(v) for k, v in models.items()}, **report,
                          "missed_targets": missed}, indent=2))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
