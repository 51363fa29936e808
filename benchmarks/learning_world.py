"""The paper in miniature on 2 CPU cores: does DUET teach M to send shorter signals while m stays accurate?

    python benchmarks/learning_world.py [--seed S] [--out DIR] [--steps N]

Everything goes through the product's own entry points, as a user would run it:

1. ``duet_verl.worlds.learning``: a hidden table of facts (name → number) that only M is taught, questions about it
   (``data_source=world_math``, scored by the real DUET scorer: no shaped reward anywhere).
2. ``duet_verl.worlds.warm_start``: verl's SFT trainer on the CPU backend warm-starts M (a verbose chain of
   random length, then the fact, then ``\\boxed{}``) and m (copy the number from the signal in the DUET prompt).
3. RL from the warm-started models with the CPU recipes' overrides (``duet_verl.cpu.overrides``), one training
   process per run: DUET (``python -m duet_verl.main``, adaptive λ, B below warm M's mean length), and the
   baselines through verl's ``main_ppo``: M alone with GRPO, and M alone with the length penalty on its own score
   (``duet_verl.train.reward_manager.length_penalized_score``).
4. ``python -m duet_verl.evaluate`` (HF backend) on the held-out questions: warm M alone, each trained M alone,
   trained M → trained m, m alone; accuracy ± 95% CI and M tokens.

Writes ``DIR/summary.json``, ``DIR/learning_curves.png`` and ``DIR/summary.md`` (the table), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from duet_verl.experiments.runs import (
    Settings,
    direction,
    evaluate,
    last_hf,
    log,
    markdown_table,
    plot_curves,
    table_rows,
    train_duet,
    train_large_alone,
)
from duet_verl.worlds.learning import build_world
from duet_verl.worlds.warm_start import warm_start

# The short version: the full world and warm starts (a smaller world warm-started in fewer SFT steps left m at ~20%
# guided accuracy), 20 steps and a faster λ (at its cap by step ~6).
QUICK = Settings(steps=20, lambda_eta=0.1)


def quick_duet(out: Path, seed: int) -> dict[int, dict[str, float]]:
    """Build the world, warm-start both models and run a short DUET training that validates on the held-out
    questions before its first step (logged as step 0) and after its last; returns its per-step metrics."""
    world = build_world(out / "world", seed=seed)
    models = warm_start(world, out / "warm", seed=seed)
    validate = ("trainer.val_before_train=True", f"trainer.test_freq={QUICK.steps}", "data.val_batch_size=64")
    return train_duet(world, models, out / "duet", QUICK, extra=validate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/learning_world"))
    parser.add_argument("--steps", type=int, default=Settings.steps)
    parser.add_argument("--quick", action="store_true", help="only the CI test's short DUET run; print its direction")
    args = parser.parse_args()
    if args.quick:
        start = time.monotonic()
        curves = quick_duet(args.out.absolute() / f"quick_seed{args.seed}", args.seed)
        result = {"seed": args.seed, **direction(curves, QUICK), "wall_s": round(time.monotonic() - start, 1)}
        print(json.dumps(result))
        return
    settings = Settings(steps=args.steps)
    out = args.out.absolute() / f"seed{args.seed}"
    start = time.monotonic()

    log(f"building the world and warm-starting M and m (seed {args.seed}) in {out}")
    world = build_world(out / "world", seed=args.seed)
    models = warm_start(world, out / "warm", seed=args.seed)

    curves = {}
    log("DUET")
    curves["duet"] = train_duet(world, models, out / "runs" / "duet", settings)
    log("M alone, GRPO")
    curves["grpo"] = train_large_alone(world, models, out / "runs" / "grpo", settings, lam=None)
    log("M alone, GRPO + length penalty")
    curves["grpo_penalty"] = train_large_alone(
        world, models, out / "runs" / "grpo_penalty", settings, lam=settings.penalty_lambda
    )

    log("evaluating on the held-out questions")
    runs = out / "runs"
    duet_eval = evaluate(
        out / "eval" / "duet", world["test"], last_hf(runs / "duet", "large"), ["duet", "large", "small"],
        models["large"], last_hf(runs / "duet", "small"),
    )  # fmt: skip
    baseline_evals = {
        name: evaluate(
            out / "eval" / name,
            world["test"],
            last_hf(runs / name, None),
            ["large"],
            last_hf(runs / name, None),
            models["small"],
        )  # fmt: skip
        for name in ("grpo", "grpo_penalty")
    }
    summary = {
        "seed": args.seed,
        "settings": asdict(settings),
        "wall_s": round(time.monotonic() - start, 1),
        "curves": {name: {str(step): values for step, values in c.items()} for name, c in curves.items()},
        "evaluation": {"duet": duet_eval, **baseline_evals},
    }
    summary["table"] = table_rows(summary["evaluation"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    table = markdown_table(summary["table"])
    (out / "summary.md").write_text(table)
    plot_curves(curves, out / "learning_curves.png")
    print(table)
    log(f"wrote {out}/summary.json, summary.md, learning_curves.png ({summary['wall_s']:.0f} s in all)")


if __name__ == "__main__":
    main()
