"""The division-of-labour world: does DUET beat a length-penalised M alone at the same accuracy?

    python benchmarks/labour_world.py [--seeds 0 1 2] [--out DIR] [--steps N] [--lambdas 0.25 0.5 1.0]

Every question needs a fact only M knows and a two-digit sum (``duet_verl.testing.labour_world``), so M alone must
write the worked sum while DUET's M may leave it to m. Per seed, through the product's entry points:

1. The world and three warm starts (verl's SFT trainer, CPU): M (fillers, the fact, the worked sum, the answer),
   the ablation M without the worked sum (is it needed?) and m (works the sum from a fact in its signal).
2. The same RL budget from the warm starts for every M (steps, batch, n, learning rate, legacy trainer, KL in the
   reward with the same coefficient): DUET (adaptive λ, marginal utility per signal) and DUET with marginal
   utility off through ``recipes/run_duet_cpu_tiny.sh``; M alone with GRPO, with the length penalty at each
   constant λ and with it at DUET's adaptive λ (its B and η; ``duet_verl.testing.adaptive_penalty``) through
   ``recipes/run_grpo_cpu_tiny.sh`` (verl's ``main_ppo``), all scored by the real scorer.
3. ``python -m duet_verl.evaluate`` (HF backend, 4 samples per question) on the held-out questions (a name and an
   addend training never paired): accuracy ± 95% CI, M and m tokens, params-weighted cost at this world's sizes
   and at 8B : 0.6B (``duet_verl.testing.frontier``), and the target of the comparison, met or not.

Writes ``DIR/seedS/summary.json`` (``table``: one row per system; ``phase_s``: the seconds of its warm starts,
RL runs and evaluations), ``summary.md``, ``learning_curves.png`` and ``pareto.png``, and ``DIR/pareto.png`` over
every seed in DIR. A seed's world, warm starts, runs and evaluations already in DIR are reused (their phase then
counts ~0 s), so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict
from pathlib import Path

from duet_verl.testing.adaptive_penalty import ADAPTIVE
from duet_verl.testing.frontier import PAPER_RATIO, cost, parameter_count, plot_curves, plot_pareto, target
from duet_verl.testing.labour_pair import race, race_result
from duet_verl.testing.labour_world import (
    DUET_OVERRIDES,
    RL_SETTINGS,
    WARM_START_RECIPES,
    build_labour_world,
    world_paths,
)
from duet_verl.testing.learning_world import (
    Settings,
    evaluate,
    last_hf,
    log,
    train_duet,
    train_large_alone,
    training_curve,
)
from duet_verl.testing.warm_start import warm_start

LAMBDAS = (0.25, 0.5, 1.0)  # DUET's adaptive λ reaches its cap (1.0) within ~10 steps; λ = 0.1 never decided
DUET_RUNS = {"duet": (), "duet_mu_off": ("duet.marginal_utility=off",)}
LABELS = {
    "warm_large": "M alone (warm start)",
    "large_direct": "M alone, warm-started without the worked sum",
    "grpo": "M alone, GRPO",
    # "penalty_<λ>": M alone, GRPO + length penalty (added per λ), then "penalty_adaptive"
    "warm_duet": "warm M → warm m",
    "duet": "DUET: trained M → trained m",
    "duet_mu_off": "DUET, marginal utility off",
    "small": "m alone (DUET's trained m)",
}


def labels(lambdas: tuple[float, ...]) -> dict[str, str]:
    """Every system's label in the table's order: M alone (warm, ablation, GRPO, penalised per λ and at the adaptive
    λ), then the pairs."""
    single, pairs = list(LABELS.items())[:3], list(LABELS.items())[3:]
    penalised = [(f"penalty_{lam}", f"M alone, GRPO + length penalty λ={lam}") for lam in lambdas]
    penalised.append(("penalty_adaptive", "M alone, GRPO + length penalty, adaptive λ (DUET's B and η)"))
    return dict(single + penalised + pairs)


def warm_models(world: dict, out: Path, seed: int) -> dict[str, Path]:
    folders = {name: out / name for name in WARM_START_RECIPES}
    if (out / "warm_start.json").is_file() and all((f / "config.json").is_file() for f in folders.values()):
        log(f"reusing the warm starts in {out}")
        return folders
    return warm_start(world, out, seed=seed, recipes=WARM_START_RECIPES)


def cached(path: Path, make, *args, **kwargs):
    """``make(*args, **kwargs)``'s JSON result (a run's curves), kept in ``path`` so that a rerun skips the run."""
    if path.is_file():
        log(f"reusing {path}")
        return json.loads(path.read_text())
    result = make(*args, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def run_seed(seed: int, out: Path, settings: Settings, lambdas: tuple[float, ...], steps_left_out: float) -> dict:
    start = time.monotonic()
    world = world_paths(out / "world")
    if not world["facts"].is_file():
        log(f"building the world (seed {seed}) in {out / 'world'}")
        build_labour_world(out / "world", seed=seed, steps_left_out=steps_left_out)
    built = json.loads(world["facts"].read_text()).get("steps_left_out", 0.0)
    if built != steps_left_out:
        raise SystemExit(f"{out / 'world'} was built with --steps-left-out {built}, not {steps_left_out}: "
                         "pass the same value, or another --out")  # fmt: skip
    models = warm_models(world, out / "warm", seed)
    phases = {"world_and_warm_starts": time.monotonic() - start}

    runs, curves = out / "runs", {}
    for name, extra in DUET_RUNS.items():
        log(f"{LABELS[name]} ({settings.steps} steps)")
        raw = cached(runs / name / "curves.json", train_duet, world, models, runs / name, settings,
                     extra=(*DUET_OVERRIDES, *extra))  # fmt: skip
        curves[name] = training_curve(raw, settings, lam=None)
    alone = {"grpo": None, **{f"penalty_{lam}": lam for lam in lambdas}, "penalty_adaptive": ADAPTIVE}  # name: λ
    for name, lam in alone.items():
        log(f"{labels(lambdas)[name]} ({settings.steps} steps)")
        raw = cached(runs / name / "curves.json", train_large_alone, world, models, runs / name, settings, lam)
        curves[name] = training_curve(raw, settings, lam=lam if isinstance(lam, float) else 0.0)  # adaptive: per step

    phases["rl_runs"] = time.monotonic() - start - sum(phases.values())
    log("evaluating on the held-out questions")
    lengths = {"large_max_tokens": settings.large_response, "small_max_tokens": settings.small_response}

    def held_out(name: str, large: Path, modes: list[str], small: Path = models["small"]) -> dict:
        """``evaluate``'s modes: "duet" is ``large`` → ``small``, "large" is ``large`` alone, "small" ``small``.
        An evaluation that already wrote its summary is reused."""
        summary_path = out / "eval" / name / "summary.json"
        if summary_path.is_file():
            log(f"reusing {summary_path}")
            summary = json.loads(summary_path.read_text())
        else:
            summary = evaluate(out / "eval" / name, world["test"], large, modes, large, small, **lengths)
        return next(iter(summary.values()))  # one benchmark: the world's test split

    warm = held_out("warm", models["large"], ["duet", "large", "small"])
    results = {"warm_large": warm["large"], "warm_duet": warm["duet"]}
    results["large_direct"] = held_out("large_direct", models["large_direct"], ["large"])["large"]
    for name in alone:
        results[name] = held_out(name, last_hf(runs / name, None), ["large"])["large"]
    for name in DUET_RUNS:
        trained = held_out(name, last_hf(runs / name, "large"), ["duet", "small"], last_hf(runs / name, "small"))
        results[name] = trained["duet"]
        if name == "duet":
            results["small"] = trained["small"]

    phases["evaluations"] = time.monotonic() - start - sum(phases.values())
    large_params, small_params = parameter_count(models["large"]), parameter_count(models["small"])
    table = {}
    for name, label in labels(lambdas).items():
        r = results[name]
        large_tokens, small_tokens = r["mean_large_tokens"], r["mean_small_tokens"]
        table[name] = {
            "system": label,
            "accuracy": r["accuracy"],
            "accuracy_ci95": r["accuracy_ci95"],
            "large_tokens": large_tokens,
            "small_tokens": small_tokens,
            "cost_world": cost(large_tokens, small_tokens, small_params / large_params),
            "cost_paper": cost(large_tokens, small_tokens, PAPER_RATIO),
        }
    summary = {
        "seed": seed,
        "settings": asdict(settings),
        "lambdas": list(lambdas),
        "steps_left_out": steps_left_out,
        "parameters": {"large": large_params, "small": small_params},
        "warm_start_s": json.loads((out / "warm" / "warm_start.json").read_text())["wall_s"],
        "wall_s": round(time.monotonic() - start, 1),
        "phase_s": {phase: round(seconds, 1) for phase, seconds in phases.items()},
        "table": [{"key": name, **row} for name, row in table.items()],
        "target": target(table),
        "curves": {name: {str(step): row for step, row in c.items()} for name, c in curves.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(markdown(summary))
    plot_curves(curves, labels(lambdas), out / "learning_curves.png")
    plot_pareto({seed: table}, labels(lambdas), out / "pareto.png")
    return summary


def markdown(summary: dict) -> str:
    lines = [
        "| system | accuracy (95% CI) | M tokens | m tokens | cost, world sizes | cost at 8B : 0.6B |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["table"]:
        low, high = row["accuracy_ci95"]
        lines.append(f"| {row['system']} | {100 * row['accuracy']:.1f} ({100 * low:.1f}–{100 * high:.1f}) | "
                     f"{row['large_tokens']:.1f} | {row['small_tokens']:.1f} | {row['cost_world']:.1f} | "
                     f"{row['cost_paper']:.1f} |")  # fmt: skip
    t = summary["target"]
    shortest = t["shortest_penalised_keeping_accuracy"]
    lines += [
        "",
        f"Target ({'met' if t['met'] else 'not met'}; same accuracy = at least {100 * t['accuracy_floor']:.1f}%): "
        f"DUET keeps it: {t['duet_keeps_accuracy']}; DUET's M tokens vs warm M: {t['large_tokens_vs_warm_large']:.2f}; "
        + (f"vs {shortest}: {t['large_tokens_vs_shortest_penalised']:.2f}; " if shortest else
           "no penalised M alone keeps it; ")
        + f"cost vs the cheapest M alone keeping it: {t['cost_world_vs_cheapest_single_model']:.2f} (world sizes), "
        f"{t['cost_paper_vs_cheapest_single_model']:.2f} (8B : 0.6B).",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def unused_folder(out: Path, name: str) -> Path:
    """The first ``out/name_N`` (N = 0, 1, ...) not there yet: a new run never resumes an earlier one's checkpoint."""
    return next(out / f"{name}_{n}" for n in itertools.count() if not (out / f"{name}_{n}").exists())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/labour_world"))
    parser.add_argument("--steps", type=int, default=RL_SETTINGS.steps)
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDAS))
    parser.add_argument(
        "--steps-left-out", type=float, default=0.0,
        help="share of M's warm-start chains that end after the fact (0: M always writes the worked sum)",
    )  # fmt: skip
    parser.add_argument(
        "--race", action="store_true",
        help="only the CI test's race (DUET and M alone at the same constant λ, shipped pair) per seed; print it. "
        "A seed may repeat (the runs are not bit-reproducible): each run gets its own folder",
    )  # fmt: skip
    args = parser.parse_args()
    if args.race:
        for seed in args.seeds:
            start = time.monotonic()
            result = race_result(race(unused_folder(args.out.absolute(), f"race_seed{seed}"), seed))
            print(json.dumps({"seed": seed, **result, "wall_s": round(time.monotonic() - start, 1)}), flush=True)
        return
    settings = Settings(**{**asdict(RL_SETTINGS), "steps": args.steps})
    lambdas = tuple(args.lambdas)
    out = args.out.absolute()
    for seed in args.seeds:
        summary = run_seed(seed, out / f"seed{seed}", settings, lambdas, args.steps_left_out)
        phases = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in summary["phase_s"].items())
        print(f"seed {seed} ({summary['wall_s']:.0f} s: {phases}):\n{markdown(summary)}")
    summaries = [json.loads(path.read_text()) for path in sorted(out.glob("seed*/summary.json"))]
    seeds = {summary["seed"]: {row["key"]: row for row in summary["table"]} for summary in summaries}
    plot_pareto(seeds, labels(lambdas), out / "pareto.png")
    table = across_seeds(summaries)
    (out / "summary.md").write_text(table)
    print(table)
    log(f"wrote {out}/seed*/summary.json, summary.md, learning_curves.png, pareto.png; {out}/summary.md, pareto.png")


def across_seeds(summaries: list[dict]) -> str:
    """Every seed's held-out accuracy, M tokens and 8B : 0.6B cost per system, and each seed's target verdict."""
    seeds = [summary["seed"] for summary in summaries]
    systems = {row["key"]: row["system"] for summary in summaries for row in summary["table"]}
    lines = [f"| system | {' | '.join(f'seed {seed}: accuracy, M tokens, cost at 8B : 0.6B' for seed in seeds)} |",
             f"|---|{'---|' * len(seeds)}"]  # fmt: skip
    for key, system in systems.items():
        cells = []
        for summary in summaries:
            row = next((r for r in summary["table"] if r["key"] == key), None)
            cell = row and f"{100 * row['accuracy']:.1f}%, {row['large_tokens']:.1f}, {row['cost_paper']:.1f}"
            cells.append(cell or "–")
        lines.append(f"| {system} | {' | '.join(cells)} |")
    verdicts = ", ".join(f"seed {s['seed']} {'met' if s['target']['met'] else 'not met'}" for s in summaries)
    return "\n".join(lines) + f"\n\nTarget: {verdicts}.\n"


if __name__ == "__main__":
    main()
