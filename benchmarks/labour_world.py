"""The division-of-labour world, part one: does M need its written steps, and can m do them instead?

    python benchmarks/labour_world.py [--seed S] [--out DIR]

Every question needs a fact only M knows and a two-digit sum (``duet_verl.testing.labour_world``). verl's SFT
trainer (CPU) warm-starts three models from the world's sets: M (fillers, the fact, the worked sum, the
answer), the ablation M (the same questions, fillers, the fact and the answer, no worked sum; the same
architecture and initial weights) and m (works the sum from a fact in the signal; random facts, never the table).
``python -m duet_verl.evaluate`` (HF backend, 4 samples per question) then scores, on the held-out questions
(a name and an addend training never paired): M alone, the ablation M alone, warm M → warm m and m alone.

If M alone is clearly more accurate than the ablation, the steps are needed; if warm M → m is as accurate as
M, m can do them from the fact, so a signal holding the fact alone would serve m: the room DUET has and a
length-penalised M alone has not. Writes ``DIR/seedS/summary.json`` and ``summary.md``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from duet_verl.testing.labour_world import MAX_LENGTH, WARM_START_RECIPES, build_labour_world
from duet_verl.testing.learning_world import evaluate, log
from duet_verl.testing.warm_start import warm_start

SYSTEMS = (  # (row, evaluation, mode)
    ("M alone (fact, worked sum, answer)", "large", "large"),
    ("M alone, warm-started without the worked sum", "large_direct", "large"),
    ("warm M → warm m (m works the sum)", "large", "duet"),
    ("m alone", "large", "small"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/labour_world"))
    args = parser.parse_args()
    out = args.out.absolute() / f"seed{args.seed}"
    start = time.monotonic()

    log(f"building the world and warm-starting M, M without steps and m (seed {args.seed}) in {out}")
    world = build_labour_world(out / "world", seed=args.seed)
    models = warm_start(world, out / "warm", seed=args.seed, recipes=WARM_START_RECIPES)
    log("evaluating on the held-out questions")
    lengths = {"large_max_tokens": MAX_LENGTH, "small_max_tokens": 64}
    evaluations = {
        "large": evaluate(out / "eval" / "large", world["test"], models["large"], ["duet", "large", "small"],
                          models["large"], models["small"], **lengths),
        "large_direct": evaluate(out / "eval" / "large_direct", world["test"], models["large_direct"], ["large"],
                                 models["large_direct"], models["small"], **lengths),
    }  # fmt: skip
    rows = []
    for system, evaluation, mode in SYSTEMS:
        result = next(iter(evaluations[evaluation].values()))[mode]  # one benchmark: the world's test split
        row = {key: result[key] for key in ("accuracy", "accuracy_ci95", "mean_large_tokens", "mean_small_tokens")}
        rows.append({"system": system, **row})
    lines = ["| system | accuracy (95% CI) | M tokens | m tokens |", "|---|---|---|---|"]
    for row in rows:
        low, high = row["accuracy_ci95"]
        lines.append(f"| {row['system']} | {100 * row['accuracy']:.1f} ({100 * low:.1f}–{100 * high:.1f}) | "
                     f"{row['mean_large_tokens']:.1f} | {row['mean_small_tokens']:.1f} |")  # fmt: skip
    table = "\n".join(lines) + "\n"
    warm = json.loads((out / "warm" / "warm_start.json").read_text())["wall_s"]
    summary = {"seed": args.seed, "wall_s": round(time.monotonic() - start, 1), "warm_start_s": warm, "table": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(table)
    print(table)
    log(f"wrote {out}/summary.json and summary.md ({summary['wall_s']:.0f} s in all)")


if __name__ == "__main__":
    main()
