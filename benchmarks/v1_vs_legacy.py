"""verl's two trainers on the same GRPO run: is the M-alone baseline decided by which trainer runs it?

    python benchmarks/v1_vs_legacy.py [--seed S] [--steps N] [--out DIR]

verl 0.9.1's ``main_ppo`` runs its V1 trainer by default (``trainer.use_v1=true``, ``verl/trainer/ppo/v1``); the
legacy ``RayPPOTrainer`` (``main_ppo_v0``, deprecated) is the one ``DuetTrainer`` extends. This runs the learning
world's M-alone GRPO baseline through both, from the same warm-started M, world, seed and settings (KL in the loss,
as the baselines run), then evaluates each trained M on the held-out questions with ``python -m
duet_verl.evaluate``. Prints one row per trainer (and writes ``DIR/summary.json``): held-out accuracy (95% CI) and
M tokens, and the training curves' first and last 4-step means of reward and response length, and the step time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from duet_verl.experiments.runs import Settings, evaluate, last_hf, log, train_large_alone, window_means
from duet_verl.worlds.learning import build_world
from duet_verl.worlds.warm_start import warm_start

# KL in M's loss, as the GRPO recipe places it (this comparison predates the benchmarks' KL-in-reward footing)
KL_IN_LOSS = ("algorithm.use_kl_in_reward=False", "actor_rollout_ref.actor.use_kl_loss=True")
TRAINERS = {"V1 (main_ppo default)": "trainer.use_v1=true", "legacy RayPPOTrainer (DUET's)": "trainer.use_v1=false"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("outputs/v1_vs_legacy"))
    args = parser.parse_args()
    out = args.out.absolute() / f"seed{args.seed}"
    settings = Settings(steps=args.steps)
    log(f"building the world and warm-starting M (seed {args.seed}) in {out}")
    world = build_world(out / "world", seed=args.seed)
    models = warm_start(world, out / "warm", seed=args.seed)
    rows = []
    for name, switch in TRAINERS.items():
        run_dir = out / ("v1" if "V1" in name else "legacy")
        log(f"M alone, GRPO, {name}")
        start = time.monotonic()
        curves = train_large_alone(world, models, run_dir, settings, lam=None, extra=(*KL_IN_LOSS, switch))
        train_s = time.monotonic() - start
        trained = last_hf(run_dir, None)
        summary = evaluate(run_dir / "eval", world["test"], trained, ["large"], trained, models["small"])
        held_out = next(iter(summary.values()))["large"]
        rows.append({
            "trainer": name,
            "accuracy": held_out["accuracy"],
            "accuracy_ci95": held_out["accuracy_ci95"],
            "large_tokens": held_out["mean_large_tokens"],
            "reward_first_last": window_means(curves, "critic/score/mean"),
            "length_first_last": window_means(curves, "response_length/mean"),
            "step_s": sum(c["timing_s/step"] for c in curves.values()) / len(curves),
            "train_wall_s": round(train_s, 1),
        })  # fmt: skip
    (out / "summary.json").write_text(json.dumps({"seed": args.seed, "steps": args.steps, "rows": rows}, indent=2))
    print("| trainer | held-out accuracy (95% CI) | M tokens | reward, first → last 4 steps | length, first → last "
          "| s/step |\n|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        low, high = r["accuracy_ci95"]
        accuracy = f"{100 * r['accuracy']:.1f} ({100 * low:.1f}–{100 * high:.1f})"
        print(
            f"| {r['trainer']} | {accuracy} | {r['large_tokens']:.1f} "
            f"| {r['reward_first_last'][0]:.2f} → {r['reward_first_last'][1]:.2f} "
            f"| {r['length_first_last'][0]:.1f} → {r['length_first_last'][1]:.1f} | {r['step_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
