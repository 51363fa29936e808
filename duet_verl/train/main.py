"""Entry point: ``python -m duet_verl.main [hydra overrides]`` (config: ``duet_verl/config/duet_trainer.yaml``).

The DUET config and the checkpoint a resume would load are checked before Ray or any worker starts; the run
itself happens in a Ray task runner, as in verl's ``main_ppo``. The driver exits with status 0 when training is
done and ``PREEMPTED_EXIT_CODE`` (75) when a stop signal ended it after a checkpoint (``duet_verl.train.preemption``).
"""

from __future__ import annotations

import os
import socket
import sys
from importlib import resources
from pathlib import Path

import hydra
import ray
from omegaconf import DictConfig, OmegaConf, open_dict
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from duet_verl.train.checkpointing import DamagedCheckpointError, choose_resume, remove_unpublished
from duet_verl.train.cluster import NodeLostError, NodeWatch, node_lost_message
from duet_verl.train.config_checks import missing_inputs, validate, validate_views
from duet_verl.train.duet_config import LARGE, SMALL, SMALL_BLOCK, DuetConfig, DuetConfigError
from duet_verl.train.model_views import build_model_views, optimizer_steps_per_training_step
from duet_verl.train.preemption import (
    PREEMPTED,
    PREEMPTED_EXIT_CODE,
    StopRequest,
    StopSignals,
    stop_actor_options,
)

USAGE_ERROR_EXIT_CODE = 2  # a mistake in the command: nothing started


@hydra.main(config_path="../config", config_name="duet_trainer", version_base=None)
def main(config: DictConfig) -> None:
    try:
        outcome = run_duet(config)
    except (DuetConfigError, DamagedCheckpointError) as error:
        if os.environ.get("DUET_DEBUG") == "1":
            raise
        print(f"error: {error}\n(nothing was started; DUET_DEBUG=1 shows the traceback)", file=sys.stderr)
        sys.exit(USAGE_ERROR_EXIT_CODE)
    if outcome == PREEMPTED:
        sys.exit(PREEMPTED_EXIT_CODE)


def run_duet(config: DictConfig) -> str:
    """Train; returns ``COMPLETED``, or ``PREEMPTED`` when a stop signal ended the run after a checkpoint."""
    duet = DuetConfig.from_config(config)
    validate(config, duet)
    missing = missing_inputs(config)
    if missing:
        raise DuetConfigError("missing inputs:\n- " + "\n- ".join(missing))
    _resolve_resume(config, duet)
    steps = optimizer_steps_per_training_step(config)
    print(f"[duet] optimizer steps per training step: M {steps[LARGE]}, m {steps[SMALL]}", flush=True)
    agent_loops = str(resources.files("duet_verl.config").joinpath("agent_loops.yaml"))
    with open_dict(config):
        config[SMALL_BLOCK].rollout.agent.agent_loop_config_path = agent_loops
    views = build_model_views(config, duet)
    validate_views(views)
    _process_setup(config)
    if not ray.is_initialized():
        from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

        ray_init = config.ray_kwargs.get("ray_init", {})
        runtime_env = OmegaConf.merge(get_ppo_ray_runtime_env(config), ray_init.get("runtime_env", {}))
        ray.init(**OmegaConf.to_container(OmegaConf.create({**ray_init, "runtime_env": runtime_env})))
    # The training loop runs beside this driver (on a cluster: the head node, where Ray runs submitted jobs), so
    # losing a worker node leaves it alive to report which one.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
    watch = NodeWatch(ray.nodes)
    stop_request = (
        ray.remote(num_cpus=0)(StopRequest)
        .options(scheduling_strategy=here, **stop_actor_options(ray.get_runtime_context().get_job_id()))
        .remote()
    )  # named: python -m duet_verl.train.preemption finds it from any node
    try:
        with StopSignals(duet.stop_signals) as signals:
            runner = DuetTaskRunner.options(scheduling_strategy=here, **_profiler_options(config)).remote()
            run = runner.run.remote(views[LARGE], views[SMALL], duet, stop_request)
            while not ray.wait([run], timeout=1.0)[0]:  # a second at most between a signal and the trainer
                signals.forward(stop_request)
            outcome = ray.get(run)
    except Exception as error:
        if watch.several_nodes:
            print("[duet] the run failed; asking Ray whether one of its nodes was lost", file=sys.stderr, flush=True)
        dead = watch.lost_nodes()
        if not dead:
            raise
        message = node_lost_message(dead, Path(config.trainer.default_local_dir).absolute())
        print(f"[duet] {message}", file=sys.stderr, flush=True)
        raise NodeLostError(message) from error
    timeline = config.ray_kwargs.get("timeline_json_file")
    if timeline:  # verl's run_ppo does the same: Ray's task timeline, for chrome://tracing
        ray.timeline(filename=timeline)
    if outcome == PREEMPTED:
        print(f"[duet] stopped for {signals.received}; exiting with status {PREEMPTED_EXIT_CODE}", flush=True)
    return outcome


def _process_setup(config: DictConfig) -> None:
    """What verl's ``run_ppo`` sets before Ray starts, for either model: ``rollout.full_determinism`` (vLLM's batch
    invariance and fixed hashing, carried to every worker by verl's runtime env) and the ``rl_insight`` logger."""
    rollouts = [config[block].rollout for block in ("actor_rollout_ref", SMALL_BLOCK)]
    if any(rollout.get("full_determinism", False) for rollout in rollouts):
        os.environ.update(VERL_FULL_DETERMINISM="1", VLLM_BATCH_INVARIANT="1",
                          PYTHONHASHSEED=str(config.actor_rollout_ref.rollout.seed))  # fmt: skip
    loggers = config.trainer.get("logger") or []
    if "rl_insight" in ([loggers] if isinstance(loggers, str) else loggers):
        os.environ["VERL_RL_INSIGHT_ENABLE"] = "1"


def _profiler_options(config: DictConfig) -> dict:
    """The task runner under nsys when verl's nsys profiler is on (its controller options), as ``run_ppo`` does."""
    profiler = config.global_profiler
    if profiler.get("tool") != "nsys" or not profiler.get("steps"):
        return {}
    return {
        "runtime_env": {"nsight": OmegaConf.to_container(profiler.global_tool_config.nsys.controller_nsight_options)}
    }


def _resolve_resume(config: DictConfig, duet: DuetConfig) -> None:
    """Choose and check the checkpoint a resume loads before anything starts, and hand it to the trainer as
    ``trainer.resume_mode=resume_path``. A damaged one stops the run naming the file
    (``duet.damaged_checkpoint=error``) or is set aside for the newest intact one (``last_intact``)."""
    trainer = config.trainer
    root = Path(trainer.default_local_dir).absolute()
    remove_unpublished(root)  # saves that never finished: nothing reads them, and no later save replaces them
    folder = choose_resume(root, trainer.resume_mode, trainer.get("resume_from_path"), duet.damaged_checkpoint)
    if folder is not None:  # the trainer loads exactly this folder (absolute: its actor need not share our cwd)
        with open_dict(config):
            trainer.resume_mode, trainer.resume_from_path = "resume_path", str(folder)


@ray.remote(num_cpus=1)
class DuetTaskRunner:
    """Builds datasets, tokenizers and the trainer on a Ray worker (verl's TaskRunner pattern)."""

    def run(self, large_config: DictConfig, small_config: DictConfig, duet: DuetConfig, stop_request) -> str:
        from verl.single_controller.ray import RayWorkerGroup
        from verl.trainer.ppo.ray_trainer import ResourcePoolManager, Role
        from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
        from verl.utils.config import omega_conf_to_dataclass
        from verl.utils.dataset.rl_dataset import collate_fn
        from verl.workers.config import HFModelConfig
        from verl.workers.engine_workers import ActorRolloutRefWorker

        from duet_verl.train.trainer import DuetTrainer

        print(f"DuetTaskRunner on {socket.gethostname()}, pid {os.getpid()}", flush=True)
        large_model: HFModelConfig = omega_conf_to_dataclass(large_config.actor_rollout_ref.model)
        small_model: HFModelConfig = omega_conf_to_dataclass(small_config.actor_rollout_ref.model)
        data = large_config.data
        train_dataset = create_rl_dataset(
            data.train_files, data, large_model.tokenizer, None, is_train=True,
            max_samples=data.get("train_max_samples", -1),
        )  # fmt: skip
        val_dataset = create_rl_dataset(
            data.val_files, data, large_model.tokenizer, None, is_train=False,
            max_samples=data.get("val_max_samples", -1),
        )  # fmt: skip
        trainer_cfg = large_config.trainer
        pool = "global_pool"
        trainer = DuetTrainer(
            config=large_config,
            small_config=small_config,
            duet=duet,
            small_tokenizer=small_model.tokenizer,
            tokenizer=large_model.tokenizer,
            processor=None,
            role_worker_mapping={Role.ActorRolloutRef: ray.remote(ActorRolloutRefWorker)},
            resource_pool_manager=ResourcePoolManager(
                resource_pool_spec={pool: [trainer_cfg.n_gpus_per_node] * trainer_cfg.nnodes},
                mapping={Role.ActorRolloutRef: pool},
            ),
            ray_worker_group_cls=RayWorkerGroup,
            train_dataset=train_dataset,
            val_dataset=val_dataset,
            collate_fn=collate_fn,
            train_sampler=create_rl_sampler(data, train_dataset),
            stop_request=stop_request,
        )
        trainer.init_workers()
        return trainer.fit()


if __name__ == "__main__":
    main()
