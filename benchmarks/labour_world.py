"""The division-of-labour world: at the same price per M token, who is more accurate for fewer tokens, DUET or M alone?

    python benchmarks/labour_world.py [--seeds 0 1 2] [--steps-left-out 0.1] [--out DIR] [--lambdas 0.25 0.5]
                                      [--alone-lambdas 1.0] [--primary-lambda 0.5] [--warm-cache DIR] [--steps N]
                                      [--jobs N]

Every question needs a fact only M knows and a two-digit sum (``duet_verl.worlds.labour``), so M alone must
write the worked sum while DUET's M may leave it to m. Per seed, through the product's entry points:

1. The world and three warm starts (verl's SFT trainer, CPU), each built once and kept in ``--warm-cache`` under a
   key of what it is made of (``warm_start.cached_warm_start``): M (fillers, the fact, usually the worked sum, the
   answer), the ablation M without the worked sum (is it needed?) and m (works the sum from a fact in its signal).
2. The same RL budget from the same warm M for every M (steps, batch, n, learning rate, legacy trainer, KL in the
   reward with the same coefficient, the real scorer). **The two frontiers at the same price**: DUET and M alone
   with the length penalty λ·L/B at each constant λ of ``--lambdas`` (B = 24), M alone also at ``--alone-lambdas``;
   then, as secondary rows, both at DUET's adaptive λ (its B and η; M alone through
   ``duet_verl.experiments.adaptive_penalty``), M alone with plain GRPO, and at ``--primary-lambda`` DUET with m grouped
   per signal and with m frozen (is m the weak link?). ``--jobs N`` trains N runs side by side: for more
   cores (on 2 cores two at a time take as long as one after the other).
3. ``python -m duet_verl.evaluate`` (HF backend) on the held-out questions (a name and an addend training never
   paired). DUET: M at temperature 0.6 (4 samples) → greedy m. M alone both ways: at 0.6 (4 samples) and greedy,
   the way m answers in DUET. Also m alone, and each m's accuracy given the right fact (an oracle signal). Then the
   params-weighted cost at this world's sizes and at 8B : 0.6B, the target (``duet_verl.experiments.frontier.target``),
   and which M signals carried the right fact.

Writes ``DIR/seedS/summary.json`` (``table``: one row per system and decoding; ``target``; ``phase_s``: seconds of
the warm starts, RL runs and evaluations), ``summary.md``, ``learning_curves.png`` and ``pareto.png``; and over every
seed in DIR ``DIR/summary.md`` (every seed, the collapse rates, the verdicts) and ``DIR/pareto.png``. What is
already in DIR (world, runs, evaluations) is reused, so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from duet_verl.experiments.adaptive_penalty import ADAPTIVE
from duet_verl.experiments.frontier import (
    PAPER_RATIO,
    collapse_rates,
    cost,
    parameter_count,
    plot_curves,
    plot_pareto,
    target,
)
from duet_verl.experiments.runs import (
    Settings,
    evaluate,
    last_hf,
    log,
    train_duet,
    train_large_alone,
    training_curve,
)
from duet_verl.worlds.labour import (
    DUET_OVERRIDES,
    RL_SETTINGS,
    WARM_START_RECIPES,
    build_labour_world,
    load_labour_world,
    oracle_small_accuracy,
    signal_facts,
    world_paths,
)
from duet_verl.worlds.labour_pair import race, race_result
from duet_verl.worlds.warm_start import cached_warm_start

LAMBDAS = (0.25, 0.5)  # DUET and M alone at each: the frontiers at the same price
ALONE_LAMBDAS = (1.0,)  # M alone only: at λ = 1 the empty guess is M alone's best reply (it collapses on every seed)
PRIMARY_LAMBDA = 0.5  # where DUET also runs with m grouped per signal and with m frozen
GREEDY = "_greedy"  # the key suffix of an M-alone row evaluated greedily


@dataclass(frozen=True)
class System:
    """One RL run: DUET (M → m) or M alone, at a constant λ, ``ADAPTIVE`` or ``None`` (GRPO, no penalty)."""

    key: str
    label: str
    pair: bool
    lam: float | str | None
    extra: tuple[str, ...] = ()


def systems(lambdas: tuple[float, ...], alone_lambdas: tuple[float, ...], primary: float) -> list[System]:
    """The runs of one seed in the table's order: the two frontiers at each λ, then the secondary rows."""
    out = [System(f"duet_{lam}", f"DUET, λ={lam}", True, lam) for lam in lambdas]
    out += [System(f"penalty_{lam}", f"M alone, length penalty λ={lam}", False, lam) for lam in lambdas + alone_lambdas]
    out += [
        System("duet_adaptive", "DUET, adaptive λ", True, ADAPTIVE),
        System("penalty_adaptive", "M alone, length penalty, adaptive λ (DUET's B and η)", False, ADAPTIVE),
        System("grpo", "M alone, GRPO (no length penalty)", False, None),
        System(f"duet_{primary}_grouped_per_signal", f"DUET, λ={primary}, m grouped per signal", True, primary,
               ("duet.small_grouping=signal",)),
        System(f"duet_{primary}_m_frozen", f"DUET, λ={primary}, m frozen", True, primary, ("duet.train_small=false",)),
    ]  # fmt: skip
    return out


def duet_lambda(lam: float | str) -> tuple[str, ...]:
    """DUET's λ overrides: a constant λ, or the adaptive rule as ``train_duet`` sets it (``RL_SETTINGS``' B, η)."""
    return () if lam == ADAPTIVE else ("duet.lambda_schedule=constant", f"duet.lambda_init={lam}")


def cached(path: Path, make, *args, **kwargs):
    """``make(*args, **kwargs)``'s JSON result (a run's curves), kept in ``path`` so that a rerun skips the run."""
    if path.is_file():
        log(f"reusing {path}")
        return json.loads(path.read_text())
    result = make(*args, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def train(system: System, world: dict, models: dict, runs: Path, settings: Settings) -> dict:
    """The system's RL run (or its kept curves) as one curve shape (``training_curve``)."""
    log(f"{system.label} ({settings.steps} steps)")
    folder = runs / system.key
    if system.pair:
        extra = (*DUET_OVERRIDES, *duet_lambda(system.lam), *system.extra)
        raw = cached(folder / "curves.json", train_duet, world, models, folder, settings, extra=extra)
        return training_curve(raw, settings, lam=None)
    raw = cached(folder / "curves.json", train_large_alone, world, models, folder, settings, system.lam)
    return training_curve(raw, settings, lam=system.lam if isinstance(system.lam, float) else 0.0)


def run_seed(seed: int, out: Path, settings: Settings, runs_of_seed: list[System], steps_left_out: float,
             warm_cache: Path, jobs: int) -> dict:  # fmt: skip
    start = time.monotonic()
    world = world_paths(out / "world")
    if not world["facts"].is_file():
        log(f"building the world (seed {seed}) in {out / 'world'}")
        build_labour_world(out / "world", seed=seed, steps_left_out=steps_left_out)
    built = json.loads(world["facts"].read_text()).get("steps_left_out", 0.0)
    if built != steps_left_out:
        raise SystemExit(f"{out / 'world'} was built with --steps-left-out {built}, not {steps_left_out}: "
                         "pass the same value, or another --out")  # fmt: skip
    models = cached_warm_start(world, warm_cache, seed=seed, recipes=WARM_START_RECIPES)
    phases = {"world_and_warm_starts": time.monotonic() - start}

    runs = out / "runs"
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # a failed run fails the seed once the others have ended
        started = {system.key: pool.submit(train, system, world, models, runs, settings) for system in runs_of_seed}
        curves = {key: run.result() for key, run in started.items()}
    phases["rl_runs"] = time.monotonic() - start - sum(phases.values())

    log("evaluating on the held-out questions")
    rows, details = evaluations(out, world, models, runs, runs_of_seed, settings)
    phases["evaluations"] = time.monotonic() - start - sum(phases.values())

    large_params, small_params = parameter_count(models["large"]), parameter_count(models["small"])
    for row in rows.values():
        row["cost_world"] = cost(row["large_tokens"], row["small_tokens"], small_params / large_params)
        row["cost_paper"] = cost(row["large_tokens"], row["small_tokens"], PAPER_RATIO)
    summary = {
        "seed": seed,
        "settings": asdict(settings),
        "systems": [asdict(system) for system in runs_of_seed],
        "steps_left_out": steps_left_out,
        "parameters": {"large": large_params, "small": small_params},
        "warm_start_s": {
            name: json.loads((path.parent / "manifest.json").read_text())["wall_s"] for name, path in models.items()
        },  # fmt: skip
        "wall_s": round(time.monotonic() - start, 1),
        "phase_s": {phase: round(seconds, 1) for phase, seconds in phases.items()},
        "table": [{"key": key, **row} for key, row in rows.items()],
        "target": target(rows),
        "small_oracle_accuracy": details,
        "curves": {name: {str(step): row for step, row in c.items()} for name, c in curves.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(markdown(summary))
    plot_curves(curves, {system.key: system.label for system in runs_of_seed}, out / "learning_curves.png")
    plot_pareto({seed: rows}, legend(summary["table"]), out / "pareto.png")
    return summary


def evaluations(out: Path, world: dict, models: dict, runs: Path, runs_of_seed: list[System], settings: Settings):
    """Every held-out row (``{key: row}``) and each m's accuracy given the right fact (``{m: accuracy}``); m alone is
    the first DUET run's m."""
    lengths = {"large_max_tokens": settings.large_response, "small_max_tokens": settings.small_response}
    labour_world = load_labour_world(world["facts"].parent)

    def held_out(name: str, large: Path, modes: list[str], small: Path = models["small"], temperature=0.6) -> dict:
        """``evaluate``'s summary of the world's test split per mode (kept and reused: ``DIR/eval/<name>``)."""
        summary_path = out / "eval" / name / "summary.json"
        if summary_path.is_file():
            log(f"reusing {summary_path}")
            return next(iter(json.loads(summary_path.read_text()).values()))
        summary = evaluate(out / "eval" / name, world["test"], large, modes, large, small, **lengths,
                           large_temperature=temperature)  # fmt: skip
        return next(iter(summary.values()))  # one benchmark: the world's test split

    def row(role: str, label: str, decoding: str, result: dict, **more) -> dict:
        return {"role": role, "system": label, "decoding": decoding, "accuracy": result["accuracy"],
                "accuracy_ci95": result["accuracy_ci95"], "large_tokens": result["mean_large_tokens"],
                "small_tokens": result["mean_small_tokens"],
                "signal_empty_fraction": result.get("signal_empty_fraction"), **more}  # fmt: skip

    sampled, greedy, pair = "M at T=0.6", "M greedy", "M at T=0.6 → m greedy"
    warm = held_out("warm", models["large"], ["duet", "large"])
    oracle = {"warm m": oracle_small_accuracy(world["facts"].parent, models["small"], settings.small_response)}
    rows = {
        "warm_large": row("warm_single", "M alone (warm start)", sampled, warm["large"]),
        "warm_large" + GREEDY: row("warm_single", "M alone (warm start)", greedy,
                                   held_out("warm_greedy", models["large"], ["large"], temperature=0.0)["large"]),
        "large_direct": row("reference", "M alone, warm-started without the worked sum", sampled,
                            held_out("large_direct", models["large_direct"], ["large"])["large"]),
        "warm_duet": row("reference", "warm M → warm m", pair, warm["duet"], small_oracle_accuracy=oracle["warm m"]),
    }  # fmt: skip
    for system in runs_of_seed:
        if not system.pair:
            trained = last_hf(runs / system.key, None)
            rows[system.key] = row("single", system.label, sampled, held_out(system.key, trained, ["large"])["large"])
            rows[system.key + GREEDY] = row("single", system.label, greedy, held_out(
                system.key + GREEDY, trained, ["large"], temperature=0.0)["large"])  # fmt: skip
            continue
        large, small = last_hf(runs / system.key, "large"), last_hf(runs / system.key, "small")
        modes = ["duet"] if "small" in rows else ["duet", "small"]
        result = held_out(system.key, large, modes, small)
        if "duet.train_small=false" not in system.extra:
            oracle[system.key] = oracle_small_accuracy(world["facts"].parent, small, settings.small_response)
        records = [json.loads(line) for line in (out / "eval" / system.key / "records.jsonl").read_text().splitlines()]
        facts = signal_facts(labour_world, [r for r in records if r["mode"] == "duet"])
        rows[system.key] = row("duet", system.label, pair, result["duet"], **facts,
                               small_oracle_accuracy=oracle.get(system.key, oracle["warm m"]))  # fmt: skip
        if "small" in result:
            rows["small"] = row("reference", f"m alone ({system.label}'s trained m)", "m greedy", result["small"])
    return rows, oracle


def legend(table: list[dict]) -> dict[str, str]:
    """Each row's name in the plots: its system, and ", greedy" for M alone evaluated greedily."""
    return {row["key"]: row["system"] + (", greedy" if row["key"].endswith(GREEDY) else "") for row in table}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def markdown(summary: dict) -> str:
    """The seed's table (every row, its decoding, whether it keeps the accuracy floor, DUET's signals and m's oracle
    accuracy) and the target's verdict with its numbers."""
    t = summary["target"]
    lines = [
        "| system | decoding | accuracy (95% CI) | M tokens | m tokens | cost, world sizes | cost at 8B : 0.6B | keeps "
        "accuracy | empty signals | right fact in signal (m's acc. with it) | m given the right fact |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["table"]:
        low, high = row["accuracy_ci95"]
        keeps = "–" if row["role"] == "reference" else ("yes" if row["accuracy"] >= t["accuracy_floor"] else "no")
        fact = "–" if "right_fact_share" not in row else (
            f"{_pct(row['right_fact_share'])} ({_pct(row['accuracy_with_right_fact'])})")  # fmt: skip
        lines.append(f"| {row['system']} | {row['decoding']} | {100 * row['accuracy']:.1f} ({100 * low:.1f}–"
                     f"{100 * high:.1f}) | {row['large_tokens']:.1f} | {row['small_tokens']:.1f} | "
                     f"{row['cost_world']:.1f} | {row['cost_paper']:.1f} | {keeps} | "
                     f"{_pct(row.get('signal_empty_fraction'))} | {fact} | "
                     f"{_pct(row.get('small_oracle_accuracy'))} |")  # fmt: skip
    return "\n".join(lines) + "\n\n" + verdict(summary) + "\n"


def verdict(summary: dict) -> str:
    """The target in one paragraph: met or not, and each comparison's numbers."""
    t, rows = summary["target"], {row["key"]: row for row in summary["table"]}
    single = rows[t["shortest_single_model"]]
    head = (f"Target {'met' if t['met'] else 'not met'} (accuracy floor {100 * t['accuracy_floor']:.1f}%): the "
            f"shortest single model keeping it is {single['system']} ({single['decoding']}), "
            f"{100 * single['accuracy']:.1f}% at {single['large_tokens']:.1f} M tokens; ")  # fmt: skip
    if t["shortest_duet"] is None:
        return head + "no DUET run keeps the accuracy."
    duet = rows[t["shortest_duet"]]
    return head + (
        f"DUET's shortest keeping it is {duet['system']}, {100 * duet['accuracy']:.1f}% at {duet['large_tokens']:.1f} "
        f"M tokens: {t['large_tokens_vs_shortest_single_model']:.2f}× the M tokens (target ≤ 0.5×), cost "
        f"{t['cost_world_vs_cheapest_single_model']:.2f}× (world sizes) and "
        f"{t['cost_paper_vs_cheapest_single_model']:.2f}× (8B : 0.6B) of the cheapest single model keeping it (< 1×)."
    )


def across_seeds(summaries: list[dict]) -> str:
    """Every seed's held-out accuracy, M tokens and 8B : 0.6B cost per row, each system's collapse rate (seeds where
    its best decoding fell below the floor), and each seed's verdict."""
    seeds = {summary["seed"]: {row["key"]: row for row in summary["table"]} for summary in summaries}
    rows = {row["key"]: row for summary in summaries for row in summary["table"]}
    groups = {key.removesuffix(GREEDY): [] for key in rows if rows[key]["role"] != "reference"}
    for key in rows:
        if key.removesuffix(GREEDY) in groups:
            groups[key.removesuffix(GREEDY)].append(key)
    rates = collapse_rates(seeds, groups)
    header = " | ".join(f"seed {seed}: accuracy, M tokens, cost at 8B : 0.6B" for seed in seeds)
    lines = [f"| system | decoding | {header} | collapsed (below the floor) |", f"|---|---|{'---|' * len(seeds)}---|"]
    for key, row in rows.items():
        cells = [
            f"{100 * r[key]['accuracy']:.1f}%, {r[key]['large_tokens']:.1f}, {r[key]['cost_paper']:.1f}" if key in r
            else "–" for r in seeds.values()
        ]  # fmt: skip
        rate = rates.get(key)
        collapsed = f"{rate['collapsed']} of {rate['seeds']}" if rate else ""
        lines.append(f"| {row['system']} | {row['decoding']} | {' | '.join(cells)} | {collapsed} |")
    verdicts = "\n".join(f"- seed {s['seed']}: {verdict(s)}" for s in summaries)
    return "\n".join(lines) + f"\n\nCollapse: a system's best decoding below the seed's floor.\n\n{verdicts}\n"


def unused_folder(out: Path, name: str) -> Path:
    """The first ``out/name_N`` (N = 0, 1, ...) not there yet: a new run never resumes an earlier one's checkpoint."""
    return next(out / f"{name}_{n}" for n in itertools.count() if not (out / f"{name}_{n}").exists())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="world seeds (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("outputs/labour_world"), help="default: %(default)s")
    parser.add_argument("--warm-cache", type=Path, default=Path("outputs/warm_start_cache"),
                        help="warm starts, kept and found again by their content (default: %(default)s)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=RL_SETTINGS.steps, help="RL steps (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="RL runs side by side (default: %(default)s)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDAS),
                        help="constant λ of both DUET and M alone (default: %(default)s)")  # fmt: skip
    parser.add_argument("--alone-lambdas", type=float, nargs="*", default=list(ALONE_LAMBDAS),
                        help="constant λ of M alone only (default: %(default)s)")  # fmt: skip
    parser.add_argument("--primary-lambda", type=float, default=PRIMARY_LAMBDA,
                        help="λ of DUET with m grouped per signal and m frozen (default: %(default)s)")  # fmt: skip
    parser.add_argument(
        "--steps-left-out", type=float, default=0.0,
        help="share of M's warm-start chains that end after the fact (default: %(default)s: always the worked sum)",
    )  # fmt: skip
    parser.add_argument(
        "--race", action="store_true",
        help="only the CI test's race (DUET and M alone at the same constant λ, shipped pair) per seed; print it. "
        "A seed may repeat (the runs are not bit-reproducible): each run gets its own folder",
    )  # fmt: skip
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: run at least one job")
    if args.race:
        for seed in args.seeds:
            start = time.monotonic()
            result = race_result(race(unused_folder(args.out.absolute(), f"race_seed{seed}"), seed))
            print(json.dumps({"seed": seed, **result, "wall_s": round(time.monotonic() - start, 1)}), flush=True)
        return
    settings = Settings(**{**asdict(RL_SETTINGS), "steps": args.steps})
    runs_of_seed = systems(tuple(args.lambdas), tuple(args.alone_lambdas), args.primary_lambda)
    out = args.out.absolute()
    for seed in args.seeds:
        summary = run_seed(seed, out / f"seed{seed}", settings, runs_of_seed, args.steps_left_out,
                           args.warm_cache.absolute(), args.jobs)  # fmt: skip
        phases = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in summary["phase_s"].items())
        print(f"seed {seed} ({summary['wall_s']:.0f} s: {phases}):\n{markdown(summary)}")
    summaries = [json.loads(path.read_text()) for path in sorted(out.glob("seed*/summary.json"))]
    seeds = {summary["seed"]: {row["key"]: row for row in summary["table"]} for summary in summaries}
    plot_pareto(seeds, legend([row for s in summaries for row in s["table"]]), out / "pareto.png")
    table = across_seeds(summaries)
    (out / "summary.md").write_text(table)
    print(table)
    log(f"wrote {out}/seed*/summary.json, summary.md, learning_curves.png, pareto.png; {out}/summary.md, pareto.png")


if __name__ == "__main__":
    main()
