"""M alone with DUET's adaptive λ: verl's single-model trainer with the length penalty on M's own score.

    python -m duet_verl.experiments.adaptive_penalty [verl main_ppo overrides] \\
        +adaptive_penalty.length_bound=24 +adaptive_penalty.eta=0.05

The benchmarks' "M alone with the adaptive λ at DUET's B" (docs/learning_world.md): verl's ``main_ppo`` on the
legacy trainer (``trainer.use_v1=false``), as the constant-λ M-alone runs, with one change. A verl custom reward
function scores one response at a time and keeps nothing between steps, so it cannot carry λ; here each training
rollout's scores (``rm_scores``, the score at each response's last token, where verl's reward loop puts it) lose
``λ · L / B`` right after generation, before the KL and the advantages, which is where a reward function's penalty
lands. λ then follows DUET's rule (``LambdaSchedule``, starting at 0, clipped to [0, 1]) from the batch's mean L.
Validation is not penalised. Each step logs the λ its penalty used as the metric ``penalty/lambda``, beside verl's
own. λ is not checkpointed: a benchmark tool, not part of the product (DUET's own λ is).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from duet_verl.core.lambda_schedule import LambdaSchedule

if TYPE_CHECKING:
    import torch

ADAPTIVE = "adaptive"  # the benchmarks' ``lam`` for this trainer (a constant λ is a number)
LAMBDA_METRIC = "penalty/lambda"


def penalise(scores: torch.Tensor, response_mask: torch.Tensor, lam: float, length_bound: float) -> torch.Tensor:
    """Subtract ``lam · L / length_bound`` from each row's score at its last response token (L = its response
    tokens), in place; returns the lengths L. Single-turn rollouts (the benchmarks'): there the response mask's
    last one is where verl's agent loop put the score (multi-turn masks leave out tool tokens; it would not be)."""
    import torch  # here: the benchmark driver imports this module and needs no torch

    lengths = response_mask.sum(-1)
    last = (lengths - 1).clamp(min=0).long()
    scores[torch.arange(scores.shape[0]), last] -= lam * lengths.to(scores.dtype) / length_bound
    return lengths


class PenalisedRollouts:
    """verl's agent-loop manager with the length penalty applied to each training rollout's scores;
    ``last_lambda`` is the λ the latest training rollout paid."""

    def __init__(self, rollouts, schedule: LambdaSchedule):
        self.rollouts, self.schedule = rollouts, schedule
        self.last_lambda: float | None = None

    def generate_sequences(self, batch):
        output = self.rollouts.generate_sequences(batch)
        if batch.meta_info.get("validate", False):
            return output
        self.last_lambda = self.schedule.value
        lengths = penalise(
            output.batch["rm_scores"], output.batch["response_mask"], self.last_lambda, self.schedule.length_bound
        )
        self.schedule.update(float(lengths.float().mean()))
        return output

    def __getattr__(self, name):  # everything else is the manager's own
        return getattr(self.rollouts, name)


def _trainer_class():
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    class AdaptivePenaltyTrainer(RayPPOTrainer):
        def init_workers(self):
            if not self.config.trainer.balance_batch:
                raise ValueError("duet_verl.experiments.adaptive_penalty logs λ in the step's balance pass: "
                                 "keep trainer.balance_batch=True")  # fmt: skip
            super().init_workers()
            settings = self.config.adaptive_penalty
            schedule = LambdaSchedule("adaptive", eta=settings.eta, length_bound=settings.length_bound)
            self.async_rollout_manager = PenalisedRollouts(self.async_rollout_manager, schedule)

        def _balance_batch(self, batch, metrics, **kwargs):
            """verl hands every training step's metrics to this pass, after the rollout: add the λ it paid."""
            metrics[LAMBDA_METRIC] = self.async_rollout_manager.last_lambda
            return super()._balance_batch(batch, metrics=metrics, **kwargs)

    return AdaptivePenaltyTrainer


def main() -> None:
    if "trainer.use_v1=false" not in sys.argv[1:]:  # V1 (verl's default) would train without the penalty
        raise SystemExit("duet_verl.experiments.adaptive_penalty runs verl's legacy trainer: pass trainer.use_v1=false")
    import ray
    import verl.trainer.main_ppo_v0 as legacy
    from verl.trainer import main_ppo

    @ray.remote
    class AdaptivePenaltyTaskRunner(legacy.TaskRunner.__ray_actor_class__):
        """verl's legacy task runner, building this module's trainer."""

        def run(self, config):
            # verl's run builds ``RayPPOTrainer`` from its function's globals, which are not the module's once Ray
            # ships the class by value: swap the trainer there.
            verl_run = super().run
            verl_run.__func__.__globals__["RayPPOTrainer"] = _trainer_class()
            return verl_run(config)

    legacy.TaskRunner = AdaptivePenaltyTaskRunner  # main_ppo imports it from there when trainer.use_v1=false
    main_ppo.main()


if __name__ == "__main__":
    main()
