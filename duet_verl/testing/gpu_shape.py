"""The GPU recipes' shape on CPU: what a CPU run of the GPU recipes themselves changes, each with its reason.

``recipes/run_duet_qwen3.sh``, ``run_grpo_baseline_qwen3.sh`` and ``eval_duet_qwen3.sh`` run unmodified on a CPU
machine with every setting they make kept, except the substitutions below: the one list, read by the tests that
run the recipes (``tests/recipes/test_gpu_shape.py``, ``tests/vllm/test_vllm_gpu_shape.py``) and rendered into
docs/gpus.md (``python -m duet_verl.testing.gpu_shape``; a test keeps the two equal). A substitution is an
environment variable (a recipe knob, or the CPU backend's switch), a hydra override appended after the recipe's
own, or an argument of the evaluation CLI (the last value wins). What stays is the shape a GPU run meets first:
several agent-loop workers per model, validation before training on sets whose sizes divide by nothing
convenient, M's tensor parallel replicas, dynamic batch sizes, chunked entropy, FSDP2 with M's actor offloaded
and its reference on CPU, two optimizer steps for M and eight for m per step, checkpoint retention, a save and a
resume.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROLLOUTS = ("hf", "vllm")
MODEL_BLOCKS = ("actor_rollout_ref", "small_actor_rollout_ref")
AGENT_WORKERS = 3  # per model; verl's default is 8
TRAIN_POOL = ("deepscaler", "dapo_math17k", "math_lighteval", "gsm8k")  # data_prep names with a train split


@dataclass(frozen=True)
class Substitution:
    """``setting`` is ``NAME=value`` (``env``: an environment variable) or a hydra override, where ``<block>``
    stands for each model block of the recipe; ``rollouts``: the CPU rollouts it applies to."""

    setting: str
    reason: str
    env: bool = False
    rollouts: tuple[str, ...] = ROLLOUTS
    # "training" (every training recipe), "baseline" (the GRPO baseline recipe, after the training ones) or
    # "evaluation" (recipes/eval_duet_qwen3.sh, whose arguments go to the CLI)
    recipes: str = "training"


SUBSTITUTIONS: list[Substitution] = [
    # --- the device --------------------------------------------------------------------------------------------
    Substitution(
        "VERL_PLATFORM=cpu",
        "the CPU backend: cpu platform, gloo process groups, FSDP engines for device cpu (duet_verl/cpu)",
        env=True,
    ),
    Substitution("TOKENIZERS_PARALLELISM=false", "no tokenizer threads beside the training workers", env=True),
    Substitution("trainer.device=cpu", "no CUDA device"),
    Substitution("+ray_kwargs.ray_init.num_gpus=2", "logical GPUs for the local Ray: verl places workers on GPUs"),
    Substitution("ray_kwargs.ray_init.num_cpus=8", "logical CPUs; fewer than 8 can stall actor scheduling"),
    Substitution("+ray_kwargs.ray_init.include_dashboard=False", "no dashboard processes: ~6 s of a 2-core start-up"),
    # --- flash-attn (a GPU-only package) and compilation ---------------------------------------------------------
    Substitution("<block>.model.use_remove_padding=False", "packed (varlen) sequences need flash-attn"),
    Substitution("+<block>.model.override_config.attn_implementation=sdpa", "flash_attention_2 needs flash-attn"),
    Substitution(
        "<block>.actor.fsdp_config.use_torch_compile=False",
        "torch.compile of verl's kernels: minutes of compiling on 2 CPU cores",
    ),
    # --- the rollout engine -------------------------------------------------------------------------------------
    Substitution(
        "<block>.rollout.name=hf",
        "vLLM's GPU build needs CUDA: the main suite rolls out with the CPU backend's hf server (the vLLM suite "
        "keeps vllm, as its CPU build)",
        rollouts=("hf",),
    ),
    Substitution(
        "+<block>.rollout.enable_sleep_mode=False",
        "vLLM's CPU build refuses sleep mode (the engines stay awake; the trainer's wake/sleep calls still run)",
        rollouts=("vllm",),
    ),
    Substitution("<block>.rollout.enforce_eager=True", "CUDA graphs: nothing to capture on a CPU", rollouts=("vllm",)),
    Substitution(
        "TP_LARGE=1",
        "one vLLM CPU engine per worker (M's TP=2 stays on the hf rollout, whose M replica spans both workers)",
        env=True,
        rollouts=("vllm",),
    ),
    Substitution(
        "GPU_MEM_LARGE=0.5",
        "with sleep mode off both engines stay resident, and DUET's start-up check refuses fractions summing above "
        "1 (0.8 + 0.7); on a CPU they size nothing (VLLM_CPU_KVCACHE_SPACE does)",
        env=True,
        rollouts=("vllm",),
    ),
    Substitution("GPU_MEM_SMALL=0.5", "as GPU_MEM_LARGE", env=True, rollouts=("vllm",)),
    Substitution(
        "VLLM_CPU_KVCACHE_SPACE=1",
        "vLLM's CPU KV cache in GiB, as gpu_memory_utilization on a GPU (its default, 4 GiB per engine, would not "
        "fit 4 engines in 24 GiB)",
        env=True,
        rollouts=("vllm",),
    ),
    Substitution(
        "VLLM_CPU_OMP_THREADS_BIND=nobind",
        "no pinning of vLLM's OpenMP threads to the cores the training workers share",
        env=True,
        rollouts=("vllm",),
    ),
    # --- sizes scaled down (the GPU recipe's value in parentheses) ---------------------------------------------
    Substitution("GPUS_PER_NODE=2", "2 workers (logical GPUs) on 2 cores (8)", env=True),
    Substitution(
        f"<block>.rollout.agent.num_workers={AGENT_WORKERS}",
        "agent-loop workers per model, each a Ray process (verl's 8): 3 split neither the 14 validation rows nor "
        "M's 32 and m's 64 rows of a step evenly, so the trainer pads every batch it hands them",
    ),
    Substitution("reward.num_workers=1", "reward-loop processes (verl's 8)"),
    Substitution(
        "actor_rollout_ref.rollout.agent.num_workers=4",
        "the GRPO baseline's agent-loop workers: its trainer (verl's RayPPOTrainer) splits a step's 32 rollouts "
        "evenly over them, without DUET's padding (8 divide the paper's 256 as well)",
        recipes="baseline",
    ),
    Substitution("MODEL_LARGE=<tiny>/model_large", "a random 4-layer Qwen3 as M, built offline (Qwen3-8B)", env=True),
    Substitution("MODEL_SMALL=<tiny>/model_small", "a random 2-layer Qwen3 as m (Qwen3-0.6B)", env=True),
    Substitution(
        "DATA_ROOT=<prepared>",
        "data_prep's output for the fixture rows it ships (tests/fixtures/datasets), nothing downloaded: math500 "
        "(13 rows) and aime24 (6), the recipe's validation sets",
        env=True,
    ),
    Substitution(
        "TRAIN_DATA=gpu_shape",
        "the fixtures' training rows of deepscaler, dapo_math17k, math_lighteval and gsm8k pooled, 16 rows "
        "(deepscaler: its 3 rows cannot fill a batch)",
        env=True,
    ),
    Substitution(
        "TRAIN_BATCH=8",
        "questions per step (64); with MINI_BATCH=4 and N=4, M takes 2 optimizer steps and m 8 per step, as "
        "with the paper's",
        env=True,
    ),
    Substitution("MINI_BATCH=4", "M's mini-batch in questions (32); m's is MINI_BATCH / N = 1 (8)", env=True),
    Substitution("K=2", "m answers per M response (4)", env=True),
    Substitution(
        "MAX_PROMPT=300",
        "M's prompt budget (512 of Qwen3's tokens): 300 of the tiny tokenizer's keep 14 of the 19 validation rows "
        "(the overlong filter drops the rest) and all 16 training rows",
        env=True,
    ),
    Substitution("MAX_RESPONSE=32", "M's response budget (8192); the token budgets per GPU follow", env=True),
    Substitution("SMALL_RESPONSE=16", "m's answer budget (1024)", env=True),
    Substitution("LENGTH_BOUND=16", "B, scaled with M's budget (1000)", env=True),
    Substitution("SAVE_FREQ=1", "a checkpoint every step (50)", env=True),
    Substitution("KEEP_CHECKPOINTS=1", "checkpoints kept (2): the second save deletes the first", env=True),
    Substitution("TEST_FREQ=2", "validation at step 2 (10), besides the one before training", env=True),
    Substitution("trainer.total_training_steps=2", "2 steps, then the same command resumed for a third (3 epochs)"),
    # --- recipes/eval_duet_qwen3.sh ----------------------------------------------------------------------------
    Substitution("BACKEND=hf", "transformers on the CPU (vllm: vLLM's GPU build)", env=True, recipes="evaluation"),
    Substitution("MODEL_LARGE=<tiny>/model_large", "trained M (Qwen/Qwen3-8B)", env=True, recipes="evaluation"),
    Substitution("MODEL_BASE_LARGE=<tiny>/model_large", "base M (Qwen/Qwen3-8B)", env=True, recipes="evaluation"),
    Substitution("MODEL_SMALL=<tiny>/model_small", "m (Qwen/Qwen3-0.6B)", env=True, recipes="evaluation"),
    Substitution(
        "DATA_ROOT=<prepared>",
        "the fixtures' rows of the five benchmarks (6 to 13 each)",
        env=True,
        recipes="evaluation",
    ),
    Substitution("--large-max-tokens 32", "M's new tokens (16384)", recipes="evaluation"),
    Substitution("--small-max-tokens 16", "m's new tokens (2048)", recipes="evaluation"),
]


def substitutions(rollout: str, recipes: str = "training") -> list[Substitution]:
    """``rollout``'s substitutions for ``recipes`` ("training", "baseline": the training ones, then its own, or
    "evaluation")."""
    if rollout not in ROLLOUTS:
        raise ValueError(f"rollout must be one of {ROLLOUTS}, got {rollout!r}")
    kinds = ("training", "baseline") if recipes == "baseline" else (recipes,)
    return [s for kind in kinds for s in SUBSTITUTIONS if rollout in s.rollouts and s.recipes == kind]


def environment(rollout: str, places: dict[str, str], recipes: str = "training") -> dict[str, str]:
    """The environment variables of ``rollout``'s substitutions, with ``places`` (``{"<tiny>": folder, ...}``) put
    in for the placeholders."""
    env = {}
    for substitution in substitutions(rollout, recipes):
        if substitution.env:
            name, value = substitution.setting.split("=", 1)
            for placeholder, path in places.items():
                value = value.replace(placeholder, path)
            env[name] = value
    return env


def overrides(rollout: str, model_blocks: tuple[str, ...] = MODEL_BLOCKS, recipes: str = "training") -> list[str]:
    """The arguments of ``rollout``'s substitutions: hydra overrides for a training recipe with ``model_blocks`` (M
    alone: one), the CLI's for the evaluation recipe."""
    chosen = []
    for substitution in substitutions(rollout, recipes):
        if substitution.env:
            continue
        if "<block>" in substitution.setting:
            chosen += [substitution.setting.replace("<block>", block) for block in model_blocks]
        else:
            chosen += substitution.setting.split(" ") if recipes == "evaluation" else [substitution.setting]
    return chosen


RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def command(recipe: str, rollout: str, places: dict[str, str], out: Path, *extra: str):
    """``bash recipes/RECIPE`` with ``rollout``'s substitutions (M-alone recipes get M's block only), ``extra``
    overrides after them, and its environment (``OUT_DIR=out``, a local Ray)."""
    recipes = "evaluation" if recipe.startswith("eval_") else "baseline" if "baseline" in recipe else "training"
    blocks = MODEL_BLOCKS if "duet" in recipe else MODEL_BLOCKS[:1]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the recipes run this env's `python`
    env = {**os.environ, "PATH": path, "RAY_ADDRESS": "", "OUT_DIR": str(out), **environment(rollout, places, recipes)}
    return ["bash", str(RECIPES / recipe), *overrides(rollout, blocks, recipes), *extra], env


def dry_run_overrides(argv: list[str], env: dict[str, str]) -> dict[str, str]:
    """The hydra overrides a recipe command would give the trainer, by key (its ``DRY_RUN=1`` listing)."""
    proc = subprocess.run(argv, env={**env, "DRY_RUN": "1"}, capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split("=", 1) for line in proc.stdout.splitlines())


def printed_overrides(recipe: str, rollout: str, places: dict[str, str], out: Path, *extra: str) -> dict[str, str]:
    """The hydra overrides ``run_recipe`` gives the trainer, by key."""
    return dry_run_overrides(*command(recipe, rollout, places, out, *extra))


def run_recipe(recipe: str, rollout: str, places: dict[str, str], out: Path, *extra: str, log: str = "") -> str:
    """Run the recipe to its end (in its own session, so nothing of it outlives a failure); its console output.
    A training recipe logs its metrics to ``out/log`` too (verl's file logger, through the recipe's ``LOGGER``)."""
    argv, env = command(recipe, rollout, places, out, *extra)
    if log:
        env = {**env, "LOGGER": "[console,file]", "VERL_FILE_LOGGER_PATH": str(out / log)}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800, start_new_session=True)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{recipe} ({rollout}) exited {proc.returncode}:\n{output[-8000:]}"
    return output


FIRST_LOG, RESUMED_LOG = "first.jsonl", "resumed.jsonl"


def run_duet_twice(rollout: str, places: dict[str, str], out: Path) -> tuple[str, str]:
    """``run_duet_qwen3.sh`` in this shape on ``rollout`` for 2 steps, then again for a third (a resume): the two
    console outputs; their metrics are in ``out/FIRST_LOG`` and ``out/RESUMED_LOG``."""
    first = run_recipe("run_duet_qwen3.sh", rollout, places, out, log=FIRST_LOG)
    resumed = run_recipe("run_duet_qwen3.sh", rollout, places, out, "trainer.total_training_steps=3", log=RESUMED_LOG)
    return first, resumed


def check_duet_runs(out: Path, first: str, resumed: str, rollout: str, places: dict[str, str]) -> None:
    """What :func:`run_duet_twice` must show."""
    import pandas as pd

    from duet_verl.core import MATH_INSTRUCTION, LambdaSchedule
    from duet_verl.experiments.runs import read_metrics
    from duet_verl.testing.run_log import engine_events, one_engine_awake_at_a_time

    first_metrics, resumed_metrics = read_metrics(out / FIRST_LOG), read_metrics(out / RESUMED_LOG)
    assert sorted(first_metrics) == [0, 1, 2] and sorted(resumed_metrics) == [2, 3], (first_metrics, resumed_metrics)
    for metrics, step in ((first_metrics, 0), (first_metrics, 2), (resumed_metrics, 3)):
        assert {"val-duet/math500/acc", "val-duet/aime24/acc"} <= metrics[step].keys(), f"no validation at {step}"
    assert "[duet] optimizer steps per training step: M 2, m 8" in first, "the paper's mini-batch structure"
    assert one_engine_awake_at_a_time(engine_events(first) + engine_events(resumed))
    # validation before training: every question once (the padding rows dropped), in a batch 3 workers split unevenly
    records = [json.loads(line) for line in (out / "validation" / "val_step_0.jsonl").read_text().splitlines()]
    questions = [(r["data_source"], r["question"]) for r in records]
    assert len(set(questions)) == len(questions), "a padding row reached the validation results"
    assert {source for source, _ in questions} == {"math500", "aime24"}
    assert len(questions) % AGENT_WORKERS != 0, f"{len(questions)} rows split evenly: the padding went untested"
    prepared = Path(places["<prepared>"])
    available = sum(len(pd.read_parquet(prepared / name / "test.parquet")) for name in ("math500", "aime24"))
    assert len(questions) <= available
    assert all(q.endswith(MATH_INSTRUCTION) for _, q in questions), "m reads the question as prompted"
    # a checkpoint each step, the older one removed; the rerun resumes at the next step
    checkpoints = out / "checkpoints"
    assert f"removed old checkpoint {checkpoints / 'global_step_1'}" in first
    assert f"resumed from {checkpoints / 'global_step_2'} at step 2" in resumed
    # λ comes back from the checkpoint: the resumed step 3 runs with the value the first run's steps moved it to
    duet = printed_overrides("run_duet_qwen3.sh", rollout, places, out)
    schedule = LambdaSchedule(duet["duet.lambda_schedule"], *(float(duet[f"duet.{key}"]) for key in
                              ("lambda_init", "lambda_eta", "length_bound")))  # fmt: skip
    for step in (1, 2):
        assert math.isclose(first_metrics[step]["duet/lambda"], schedule.value, abs_tol=1e-9), f"λ at step {step}"
        schedule.update(first_metrics[step]["duet/penalised_length_mean"])
    assert math.isclose(resumed_metrics[3]["duet/lambda"], schedule.value, abs_tol=1e-9), "λ after the resume"
    assert schedule.value > 0, "λ never left its initial value: the resume check would not tell"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["global_step_3", "latest_checkpointed_iteration.txt"]


def pool_training_rows(prepared: Path, names: tuple[str, ...] = TRAIN_POOL) -> Path:
    """``prepared/gpu_shape/train.parquet``: the training rows of ``names`` (data_prep's output) in one file."""
    import pandas as pd

    out = prepared / "gpu_shape" / "train.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([pd.read_parquet(prepared / name / "train.parquet") for name in names], ignore_index=True).to_parquet(out)
    return out


def markdown_table() -> str:
    rows = ["| setting | rollout | why |", "|---|---|---|"]
    for substitution in SUBSTITUTIONS:
        where = "both" if substitution.rollouts == ROLLOUTS else substitution.rollouts[0]
        where = where if substitution.recipes == "training" else f"{where}, {substitution.recipes}"
        kind = "env " if substitution.env else ""
        rows.append(f"| {kind}`{substitution.setting}` | {where} | {substitution.reason} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    # python -m duet_verl.testing.gpu_shape: the substitutions as docs/gpus.md's table
    print(markdown_table(), end="")
