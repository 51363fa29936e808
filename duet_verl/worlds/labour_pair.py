"""The CPU main job: DUET from the division-of-labour world's warm-started pair, which ships with duet-verl.

    bash recipes/run_duet_cpu_world.sh            (python -m duet_verl.worlds.labour_pair --out DIR [overrides])

The pair (``assets/labour_pair``, 5 MB) is M and m of ``benchmarks/labour_world.py --seeds 2 --steps-left-out 0.1``,
warm-started with verl's SFT trainer on CPU (about 20 minutes to make): M writes fillers, the fact only it knows,
usually the worked sum, and the answer; m works the sum from a fact in its signal. The world's questions are
rebuilt here (deterministic, about 5 s) and checked against the facts and tokenizer the pair learnt. DUET then runs
as one ``python -m duet_verl.main`` process, with the tiny CPU recipe's overrides (``duet_verl.cpu.overrides``), the
real scorer and the adaptive λ (``labour.RL_SETTINGS``); it needs no checkout, only duet-verl installed. It
validates on the 48 held-out questions before its first step and after its last, and ends with what moved: M's
length, λ, m's training accuracy, the held-out accuracy and M's held-out tokens. Its metrics are in
``OUT/duet/metrics.jsonl`` (verl's file logger).

To remake the pair (after a change to the world's code, which ``prepare`` detects): run
``python benchmarks/labour_world.py --seeds 2 --steps-left-out 0.1`` and copy the ``model`` folders of its warm-start
cache's ``large-*`` and ``small-*`` entries (``--warm-cache``, whose manifests name the seed) to ``assets/labour_pair/
{large,small}``, and the world's ``facts.json`` beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

from duet_verl.cpu.overrides import CPU_DEFAULTS, ROLLOUTS, CpuRun
from duet_verl.experiments.runs import (
    HELDOUT,
    METRICS_FILE,
    Settings,
    direction,
    log,
    read_metrics,
    run,
    train_duet,
    train_large_alone,
    training_curve,
    window_means,
    window_size,
)
from duet_verl.worlds.labour import DUET_OVERRIDES, RL_SETTINGS, build_labour_world, world_paths

PAIR = Path(str(resources.files("duet_verl.worlds").joinpath("assets/labour_pair")))
PAIR_WORLD = {"seed": 2, "steps_left_out": 0.1}  # the world the pair was warm-started on
HELDOUT_TOKENS = HELDOUT.replace("/acc", "/large_tokens")  # M's tokens per held-out question
# The pair's held-out result before any step (greedy M -> greedy m, so the same on every run that validates first):
# a run started with ``trainer.val_before_train=False`` reports it as its step 0. tests/recipes/test_fresh_clone.py
# checks it against the main job's own validation.
PAIR_HELDOUT = {HELDOUT: 47 / 48, HELDOUT_TOKENS: 73.0}


def prepare(out: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """The pair's world (built once into ``out/world``) and the pair's model folders."""
    world = world_paths(out / "world")
    if world["facts"].is_file():
        built = json.loads(world["facts"].read_text())
        if {key: built.get(key) for key in PAIR_WORLD} != PAIR_WORLD:
            raise SystemExit(f"{out / 'world'} holds another world ({built.get('seed')=}, "
                             f"{built.get('steps_left_out')=}): pass another --out")  # fmt: skip
    else:
        build_labour_world(out / "world", **PAIR_WORLD)
    models = {"large": PAIR / "large", "small": PAIR / "small"}
    vocab = json.loads((world["tokenizer"] / "tokenizer.json").read_text())["model"]["vocab"]
    same_tokens = all(
        json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"] == vocab for folder in models.values()
    )
    same_facts = json.loads(world["facts"].read_text()) == json.loads((PAIR / "facts.json").read_text())
    if not (same_tokens and same_facts):
        differs = "facts.json" if same_tokens else "tokenizer.json"
        raise RuntimeError(f"the rebuilt world ({out / 'world'}) differs from the one the shipped pair learnt "
                           f"({PAIR}, {differs}): the world's code changed since the pair was made; "
                           "rebuild the pair with benchmarks/labour_world.py")  # fmt: skip
    return world, models


def main_job(
    out: Path,
    settings: Settings = RL_SETTINGS,
    extra: tuple[str, ...] = (),
    echo: bool = True,
    cpu: CpuRun = CPU_DEFAULTS,
) -> dict:
    """DUET on the shipped pair, validated on the held-out questions before training (step 0; ``PAIR_HELDOUT``
    when ``extra`` turns that off) and after."""
    world, models = prepare(out)
    validate = ("trainer.val_before_train=True", f"trainer.test_freq={settings.steps}", "data.val_batch_size=48")
    extra = (*DUET_OVERRIDES, *validate, *extra)
    curves = train_duet(world, models, out / "duet", settings, extra=extra, echo=echo, cpu=cpu)
    curves.setdefault(0, dict(PAIR_HELDOUT))
    return curves


def report(curves: dict[int, dict[str, float]], settings: Settings) -> str:
    """What moved, first steps against last (``direction``'s windows), in a few lines."""
    moved = direction(curves, settings)
    steps = sorted(step for step in curves if step > 0)
    length = window_means(curves, "duet/large_response_length_mean")
    accuracy = window_means(curves, "duet/small_accuracy")
    ends = window_size(len(steps))
    size = f"{ends} step" + ("s" if ends > 1 else "")
    trained = f"{len(steps)} step" + ("s" if len(steps) > 1 else "")
    return "\n".join([
        f"DUET on the division-of-labour world, {trained} (first {size} → last {size}):",
        f"  M's response length  {length[0]:6.1f} → {length[1]:6.1f} tokens ({moved['length_ratio']:.2f}×)",
        f"  λ                    {curves[steps[0]]['duet/lambda']:6.2f} → {curves[steps[-1]]['duet/lambda']:6.2f}",
        f"  m's accuracy         {accuracy[0]:6.2f} → {accuracy[1]:6.2f} (training, m's answers to M's signals)",
        f"  held-out accuracy    {moved['heldout_accuracy_before']:6.2f} → {moved['heldout_accuracy_after']:6.2f} "
        f"({HELDOUT}: greedy M → greedy m, before the first step and after the last)",
        f"  held-out M tokens    {curves[0][HELDOUT_TOKENS]:6.1f} → {curves[steps[-1]][HELDOUT_TOKENS]:6.1f}",
    ])  # fmt: skip


# ---------------------------------------------------------------------------------------------- the CI test's race
# DUET's M and M alone, each with the length penalty at the same constant λ from the same pair, for as many steps.
# λ = 1 (where DUET's adaptive λ ends) weighs length against m's noisy 0/1 answers more than the benchmark's 0.5 does,
# so 12 steps show the direction. DUET runs with marginal utility off, a replicate here (m alone answers ~0). The two
# runs go side by side, one worker per model (``RACE_CPU``): on 2 cores start-up is the critical path, and each run
# spends it starting processes one after another, half as many with one worker. DUET skips the validation before its
# first step (the pair's is ``PAIR_HELDOUT``) and neither saves a checkpoint. docs/learning_world.md has the runs.
RACE = replace(RL_SETTINGS, steps=12)
RACE_LAMBDA = 1.0
RACE_CPU = CpuRun(workers=1)


def race(out: Path, seed: int, python: str = sys.executable) -> dict[str, dict[int, dict[str, float]]]:
    """DUET through the CPU main job's entry point, run by ``python`` (the CI test's: duet-verl installed from its
    wheel), and M alone through verl's ``main_ppo``, both at constant λ = ``RACE_LAMBDA`` for ``RACE.steps`` steps,
    the data order from ``seed``, side by side; each run's logged metrics per step."""
    from concurrent.futures import ThreadPoolExecutor

    quick = ("trainer.save_freq=-1", f"data.seed={seed}")  # nothing reads a checkpoint of the race
    constant = ("duet.lambda_schedule=constant", f"duet.lambda_init={RACE_LAMBDA}", "duet.marginal_utility=off",
                "trainer.val_before_train=False", *quick)  # fmt: skip
    entry = [python, "-m", "duet_verl.worlds.labour_pair", "--out", str(out / "duet"), "--steps", str(RACE.steps),
            "--workers", str(RACE_CPU.workers), *constant]  # fmt: skip
    world, models = prepare(out / "duet")  # built once, before either run reads it
    with ThreadPoolExecutor(max_workers=2) as pool:
        duet = pool.submit(run, entry, out / "duet.log", cwd=out)  # not the checkout: ``python`` imports its own
        alone = pool.submit(train_large_alone, world, models, out / "alone", RACE, lam=RACE_LAMBDA,
                            extra=quick, cpu=RACE_CPU)  # fmt: skip
        duet.result()
        duet_metrics = read_metrics(out / "duet" / "duet" / METRICS_FILE)  # main_job's file logger
        duet_metrics.setdefault(0, dict(PAIR_HELDOUT))
        return {"duet": duet_metrics, "alone": alone.result()}


def race_result(metrics: dict[str, dict[int, dict[str, float]]]) -> dict[str, float]:
    """Each run's M length and training accuracy over its last ``window_size`` steps, DUET's length relative to its
    first steps, M tokens per correct answer (length / accuracy) of M alone relative to DUET's, and DUET's held-out
    accuracy and M tokens before and after training."""
    curves = {"duet": training_curve(metrics["duet"], RACE, lam=None),
              "alone": training_curve(metrics["alone"], RACE, lam=RACE_LAMBDA)}  # fmt: skip
    result = {}
    for name, steps in curves.items():
        result[f"{name}_length"] = window_means(steps, "large_length")[1]
        result[f"{name}_accuracy"] = window_means(steps, "accuracy")[1]
    result["duet_length_ratio"] = result["duet_length"] / window_means(curves["duet"], "large_length")[0]

    def per_correct(name: str) -> float:
        return result[f"{name}_length"] / max(result[f"{name}_accuracy"], 1e-3)

    result["alone_vs_duet_tokens_per_correct"] = per_correct("alone") / per_correct("duet")
    duet, last_step = metrics["duet"], max(metrics["duet"])
    for when, step in (("before", 0), ("after", last_step)):
        result[f"heldout_accuracy_{when}"] = duet[step][HELDOUT]
        result[f"heldout_large_tokens_{when}"] = duet[step][HELDOUT_TOKENS]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_out = Path(os.environ.get("TMPDIR", "/tmp")) / "duet_cpu_world"
    parser.add_argument("--out", type=Path, default=default_out, help="the world, the run's log and checkpoints")
    parser.add_argument("--steps", type=int, default=RL_SETTINGS.steps)
    parser.add_argument("--workers", type=int, default=CPU_DEFAULTS.workers, help="training workers per model")
    parser.add_argument("--rollout", choices=ROLLOUTS, default=CPU_DEFAULTS.rollout, help="the rollout backend")
    parser.add_argument("overrides", nargs="*", help="hydra overrides for the DUET run, e.g. duet.lambda_eta=0.1")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: train at least one step")
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: at least one worker")
    settings = replace(RL_SETTINGS, steps=args.steps)
    start = time.monotonic()
    log(f"DUET from the shipped warm-started pair ({PAIR}), {settings.steps} steps; run folder {args.out.absolute()}")
    try:
        cpu = CpuRun(rollout=args.rollout, workers=args.workers)
        curves = main_job(args.out.absolute(), settings, tuple(args.overrides), cpu=cpu)
    except RuntimeError as error:  # the run's output is already on the console: name the failure and the log only
        raise SystemExit(f"[labour_pair] {str(error).splitlines()[0]}") from None
    print(report(curves, settings), flush=True)
    log(f"done in {time.monotonic() - start:.0f} s; log {args.out.absolute() / 'duet' / 'train.log'}")


if __name__ == "__main__":
    main()
