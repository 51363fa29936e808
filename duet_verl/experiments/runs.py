"""The benchmarks' RL runs and evaluations: DUET and the single-model baselines trained from warm-started models
through the product's recipes, and the held-out evaluation (``benchmarks/learning_world.py``,
``benchmarks/labour_world.py`` and the CPU main job, ``duet_verl.worlds.labour_pair``, use them).

Each run is one training process, ``python -m duet_verl.main`` (DUET) or verl's ``main_ppo`` (M alone), started
with the overrides of the tiny CPU recipes (``duet_verl.cpu.overrides``: what ``recipes/run_duet_cpu_tiny.sh`` and
``run_grpo_cpu_tiny.sh`` launch) and then the world's data, models and settings, so it needs no checkout; metrics
are read back from verl's JSONL file logger (``trainer.logger=[console,file]``, ``<run>/metrics.jsonl``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from duet_verl.cpu.overrides import CPU_DEFAULTS, CpuRun, duet_tiny, grpo_tiny
from duet_verl.experiments.adaptive_penalty import ADAPTIVE, LAMBDA_METRIC


@dataclass(frozen=True)
class Settings:
    """RL settings shared by DUET and the baselines (sized for 2 CPU cores)."""

    steps: int = 40
    batch: int = 8  # questions per step
    n: int = 4  # M responses per question
    k: int = 2  # m answers per signal
    lr_large: float = 1e-4
    lr_small: float = 2e-5
    large_response: int = 128  # warm M writes up to ~110 tokens
    small_response: int = 16  # m's answer is ~8
    length_bound: float = 20.0  # B: about the shortest response m can use (warm M's mean is ~56)
    lambda_eta: float = 0.05  # η: faster than the paper's 0.01, for a 40-step run
    penalty_lambda: float = 1.0  # the constant λ of the M-alone + length penalty baseline (where DUET's λ ends)


def log(message: str) -> None:
    print(f"[experiments {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(
    command: list[str], log_path: Path, env: dict[str, str] | None = None, echo: bool = False, cwd: Path | None = None
) -> str:
    """Run a command (in ``cwd``), keep its output (stdout and stderr) in ``log_path``, also printed as it comes
    with ``echo``; fail with the log's tail."""
    start = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    environment = {**os.environ, **(env or {})}
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    with subprocess.Popen(command, cwd=cwd, env=environment, **pipe) as process:
        for line in process.stdout:
            lines.append(line)
            if echo:
                print(line, end="", flush=True)
    output = "".join(lines)
    log_path.write_text(output)
    if process.returncode != 0:
        raise RuntimeError(
            f"{log_path.parent.name} ({' '.join(command[:2])}) failed (exit {process.returncode}); log {log_path}:\n"
            f"{output[-4000:]}"
        )
    log(f"{log_path.parent.name}: done in {time.monotonic() - start:.0f} s")
    return output


METRICS_FILE = "metrics.jsonl"


def file_logger(out: Path, name: str = METRICS_FILE) -> tuple[dict[str, str], tuple[str, ...]]:
    """The environment and override that make a run log every step's metrics to ``out/name`` (verl's file logger,
    which overwrites the file; read back by :func:`read_metrics`). The override goes after the recipe's own."""
    return {"VERL_FILE_LOGGER_PATH": str(out / name)}, ("trainer.logger=[console,file]",)


def read_metrics(path: Path) -> dict[int, dict[str, float]]:
    """``{step: {metric: value}}`` from verl's JSONL file logger (numbers only; several lines of a step merge)."""
    metrics: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        numbers = {
            k: float(v) for k, v in row["data"].items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        metrics.setdefault(int(row["step"]), {}).update(numbers)
    return metrics


def train(entry: str, overrides: list[str], out: Path, cpu: CpuRun, echo: bool = False) -> dict[int, dict[str, float]]:
    """One training process, ``python -m entry overrides`` with ``cpu``'s environment, its metrics logged to
    ``out/metrics.jsonl`` and its output to ``out/train.log``; the metrics it logged per step."""
    logger_env, logger = file_logger(out)
    command = [sys.executable, "-m", entry, *overrides, *logger]
    run(command, out / "train.log", {**cpu.env(), **logger_env}, echo)
    return read_metrics(out / METRICS_FILE)


def recipe_shape(settings: Settings, out: Path) -> dict:
    """What the tiny CPU recipes take from ``settings`` (steps, batch, n, M's learning rate) and the run folder."""
    return {"steps": settings.steps, "n": settings.n, "batch": settings.batch, "lr": settings.lr_large, "out_dir": out}


def common_overrides(world: dict, models: dict, settings: Settings) -> list[str]:
    """The world's data and M, and M's batching, over a tiny recipe's list (which sets steps, batch, n, M's learning
    rate and the checkpoint folder from ``recipe_shape``)."""
    return [
        f"data.train_files={world['train']}",
        f"data.val_files={world['test']}",
        "data.max_prompt_length=48",
        f"data.max_response_length={settings.large_response}",
        "reward.custom_reward_function.path=null",  # the real DUET scorer
        f"actor_rollout_ref.model.path={models['large']}",
        # M's whole share of a step per pass (its batch × n rows over 2 workers): fewer, larger passes are faster
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={settings.batch * settings.n // 2}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={settings.batch * settings.n // 2}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={settings.batch * settings.n // 2}",
        "actor_rollout_ref.actor.checkpoint.save_contents=[hf_model]",
        f"trainer.save_freq={settings.steps}",
        "trainer.test_freq=-1",
    ]


def train_duet(
    world: dict,
    models: dict,
    out: Path,
    settings: Settings,
    extra: tuple[str, ...] = (),
    echo: bool = False,
    cpu: CpuRun = CPU_DEFAULTS,
) -> dict[int, dict[str, float]]:
    """DUET from the warm-started models; ``extra`` hydra overrides go last (benchmarks vary one setting);
    ``echo`` prints the run's output as it comes; ``cpu`` says where it runs (e.g. one worker per model)."""
    small_share = settings.batch * settings.n * settings.k // 2  # m's rows of a step per worker: one pass each
    overrides = [
        *duet_tiny(cpu, k=settings.k, **recipe_shape(settings, out)),
        *common_overrides(world, models, settings),
        f"small_actor_rollout_ref.model.path={models['small']}",
        f"small_actor_rollout_ref.actor.optim.lr={settings.lr_small}",
        f"small_actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={small_share}",
        f"small_actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={small_share}",
        f"small_actor_rollout_ref.rollout.response_length={settings.small_response}",
        "small_actor_rollout_ref.actor.checkpoint.save_contents=[hf_model]",
        f"duet.length_bound={settings.length_bound}",
        "duet.lambda_schedule=adaptive",
        "duet.lambda_init=0.0",
        f"duet.lambda_eta={settings.lambda_eta}",
        *extra,
    ]
    return train("duet_verl.main", overrides, out, cpu, echo)


def kl_as_duet() -> tuple[str, ...]:
    """DUET's KL placement and coefficient for M, read from ``duet_trainer.yaml`` (in the reward, not the loss), as
    overrides for the M-alone runs, so every M trains on the same footing (the GRPO recipe puts KL in the loss)."""
    from importlib import resources

    from omegaconf import OmegaConf

    duet = OmegaConf.create(resources.files("duet_verl.config").joinpath("duet_trainer.yaml").read_text())
    return (
        f"algorithm.use_kl_in_reward={duet.algorithm.use_kl_in_reward}",
        f"algorithm.kl_ctrl.kl_coef={duet.algorithm.kl_ctrl.kl_coef}",
        f"actor_rollout_ref.actor.use_kl_loss={duet.actor_rollout_ref.actor.use_kl_loss}",
    )


def train_large_alone(
    world: dict,
    models: dict,
    out: Path,
    settings: Settings,
    lam: float | str | None,
    extra: tuple[str, ...] = (),
    cpu: CpuRun = CPU_DEFAULTS,
) -> dict[int, dict[str, float]]:
    """M alone with GRPO through verl's ``main_ppo`` on the legacy trainer that DUET's M runs on (V1 gives the same
    result here: benchmarks/v1_vs_legacy.py, docs/development.md), KL placed as DUET's M places it. ``lam``: the
    constant λ of the length penalty on M's own score, ``ADAPTIVE`` for DUET's rule at ``settings.length_bound``
    and ``lambda_eta`` (``duet_verl.experiments.adaptive_penalty``; each step's λ lands in its metrics as
    ``penalty/lambda``), ``None`` for plain GRPO; ``extra`` hydra overrides go last; ``cpu`` says where it
    runs."""
    overrides = [
        *grpo_tiny(cpu, **recipe_shape(settings, out)),
        *common_overrides(world, models, settings),
        *kl_as_duet(),
        "trainer.use_v1=false",
    ]
    entry = "verl.trainer.main_ppo"
    if lam == ADAPTIVE:
        entry = "duet_verl.experiments.adaptive_penalty"
        overrides += [
            f"+adaptive_penalty.length_bound={settings.length_bound}",
            f"+adaptive_penalty.eta={settings.lambda_eta}",
        ]
    elif lam is not None:
        overrides += [
            "reward.custom_reward_function.path=pkg://duet_verl.train.reward_manager",
            "reward.custom_reward_function.name=length_penalized_score",
            f"+reward.custom_reward_function.reward_kwargs.lam={lam}",
            f"+reward.custom_reward_function.reward_kwargs.length_bound={settings.length_bound}",
        ]
    metrics = train(entry, [*overrides, *extra], out, cpu)
    unpenalised = [step for step, values in metrics.items() if step > 0 and LAMBDA_METRIC not in values]
    if lam == ADAPTIVE and unpenalised:
        raise RuntimeError(f"{out.name}: the adaptive λ did not penalise training steps {unpenalised}; "
                           f"log {out / 'train.log'}")  # fmt: skip
    return metrics


def training_curve(
    curves: dict[int | str, dict[str, float]], settings: Settings, lam: float | None
) -> dict[int, dict[str, float]]:
    """One shape for any run's per-step metrics: M's mean response length and the training accuracy (DUET: m's
    answers to M's signals, and λ; ``lam=None``). M alone's accuracy is its score plus the penalty it paid at
    constant ``lam``, or at the step's ``penalty/lambda`` (the adaptive λ, also kept as the row's λ): the score
    is correct − λ·L/B, linear in L, so batch means add up. A step without training metrics (step 0: a
    validation before training) is left out."""
    rows = {}
    for step, values in curves.items():
        if lam is None and "duet/lambda" in values:
            rows[int(step)] = {"large_length": values["duet/large_response_length_mean"],
                               "accuracy": values["duet/small_accuracy"], "lambda": values["duet/lambda"]}  # fmt: skip
        elif lam is not None and "response_length/mean" in values:
            length, step_lam = values["response_length/mean"], values.get(LAMBDA_METRIC, lam)
            accuracy = values["critic/score/mean"] + step_lam * length / settings.length_bound
            rows[int(step)] = {"large_length": length, "accuracy": accuracy}
            if LAMBDA_METRIC in values:
                rows[int(step)]["lambda"] = step_lam
    return rows


def evaluate(
    out: Path,
    test_file: Path,
    large: Path,
    modes: list[str],
    base_large: Path,
    small: Path,
    large_max_tokens: int = 128,
    small_max_tokens: int = 16,
    large_temperature: float = 0.6,
) -> dict:
    """``python -m duet_verl.evaluate`` (hf backend) on a world's held-out file: 4 samples per question with M at
    ``large_temperature`` (the paper's 0.6), or one where M is greedy (``large_temperature=0``: m always is)."""
    samples = 4 if large_temperature > 0 else 1
    command = [
        sys.executable, "-m", "duet_verl.evaluate", "--backend", "hf", "--device", "cpu", "--no-progress",
        "--large", str(large), "--base-large", str(base_large), "--small", str(small), "--data", str(test_file),
        "--modes", *modes, "--out", str(out), "--samples", str(samples), "--large-max-tokens", str(large_max_tokens),
        "--small-max-tokens", str(small_max_tokens), "--chunk-size", "96", "--large-temperature",
        str(large_temperature),
    ]  # fmt: skip
    run(command, out / "evaluate.log")
    return json.loads((out / "summary.json").read_text())


def last_hf(run_dir: Path, model: str | None) -> Path:
    """The HF export of a run's final checkpoint (DUET: per model; main_ppo: the one actor)."""
    step = (run_dir / "checkpoints" / "latest_checkpointed_iteration.txt").read_text().strip()
    folder = run_dir / "checkpoints" / f"global_step_{step}"
    return (folder / model / "actor" if model else folder / "actor") / "huggingface"


# Per-step metrics of each run, as the trainers log them: (DUET key, main_ppo key).
CURVES = {
    "M response length (tokens)": ("duet/large_response_length_mean", "response_length/mean"),
    "r_Mm (guided m accuracy per signal)": ("duet/r_Mm", None),
    "r_m (m alone, marginal utility)": ("duet/r_m", None),
    "λ": ("duet/lambda", None),
}
RUN_LABELS = {"duet": "DUET", "grpo": "M alone, GRPO", "grpo_penalty": "M alone, GRPO + length penalty"}


def plot_curves(curves: dict[str, dict[int, dict[str, float]]], path: Path) -> None:
    """One panel per ``CURVES`` entry, each run's metric under the key its trainer logs."""
    from duet_verl.experiments.frontier import plot_curves as plot

    rows = {}
    for run_name, steps in curves.items():
        keys = {title: logged[0] if run_name == "duet" else logged[1] for title, logged in CURVES.items()}
        rows[run_name] = {
            step: {title: values[key] for title, key in keys.items() if key in values} for step, values in steps.items()
        }
    plot(rows, RUN_LABELS, path, panels=tuple((title, title) for title in CURVES))


def table_rows(evaluation: dict) -> list[dict]:
    """The paper's comparison on the held-out questions, one row per system."""

    def only(summary: dict) -> dict:
        return next(iter(summary.values()))  # one benchmark: the world's test split

    duet = only(evaluation["duet"])
    systems = [
        ("M alone (warm start)", duet["large"]),
        (RUN_LABELS["grpo"], only(evaluation["grpo"])["large"]),
        (RUN_LABELS["grpo_penalty"], only(evaluation["grpo_penalty"])["large"]),
        ("DUET: trained M → trained m", duet["duet"]),
        ("m alone (trained)", duet["small"]),
    ]
    warm_tokens = duet["large"]["mean_large_tokens"]
    return [
        {
            "system": name,
            "accuracy": s["accuracy"],
            "accuracy_ci95": s["accuracy_ci95"],
            "large_tokens": s["mean_large_tokens"],
            "large_token_saving_vs_warm_m": 1 - s["mean_large_tokens"] / warm_tokens
            if s["mean_large_tokens"]
            else None,
        }
        for name, s in systems
    ]


def markdown_table(rows: list[dict]) -> str:
    lines = ["| system | accuracy (95% CI) | M tokens | M tokens saved vs warm M |", "|---|---|---|---|"]
    for row in rows:
        low, high = row["accuracy_ci95"]
        saving = row["large_token_saving_vs_warm_m"]
        lines.append(
            f"| {row['system']} | {100 * row['accuracy']:.1f} ({100 * low:.1f}–{100 * high:.1f}) | "
            f"{row['large_tokens']:.1f} | {'–' if saving is None else f'{100 * saving:.0f}%'} |"
        )
    return "\n".join(lines) + "\n"


WINDOW = 4  # steps averaged at each end of a run
HELDOUT = "val-duet/world_math/acc"  # greedy M -> greedy m on every held-out question


def window_size(steps: int) -> int:
    """Steps averaged at each end of a run of ``steps`` training steps: ``WINDOW``, fewer where the ends would
    overlap (a short run: first half against second)."""
    return max(1, min(WINDOW, steps // 2))


def window_means(curves: dict[int, dict[str, float]], key: str) -> tuple[float, float]:
    """``key``'s mean over the first ``window_size`` training steps and over the last (step 0, a validation before
    training, is not one)."""
    steps = sorted(step for step in curves if step > 0)
    size = window_size(len(steps))
    first, last = steps[:size], steps[-size:]
    return tuple(sum(curves[s][key] for s in window) / len(window) for window in (first, last))


def direction(curves: dict[int, dict[str, float]], settings: Settings) -> dict[str, float]:
    """What the CI test asserts: M's length and guided m's accuracy over the last training steps relative to the
    first, the held-out accuracy (greedy, validation) before and after training, and the largest gap between the
    logged λ and the adaptive rule replayed from the logged lengths."""
    from duet_verl.core import LambdaSchedule

    steps = sorted(step for step in curves if step > 0)  # step 0: the validation before training
    (length_first, length_last), (accuracy_first, accuracy_last) = (
        window_means(curves, key) for key in ("duet/large_response_length_mean", "duet/small_accuracy")
    )
    schedule = LambdaSchedule("adaptive", 0.0, settings.lambda_eta, settings.length_bound)  # train_duet's settings
    gap = 0.0
    for step in steps:
        gap = max(gap, abs(curves[step]["duet/lambda"] - schedule.value))
        schedule.update(curves[step]["duet/penalised_length_mean"])
    return {
        "length_ratio": length_last / length_first,
        "accuracy_ratio": accuracy_last / accuracy_first,
        "heldout_accuracy_before": curves[0][HELDOUT],
        "heldout_accuracy_after": curves[steps[-1]][HELDOUT],
        "lambda_rule_gap": gap,
    }
