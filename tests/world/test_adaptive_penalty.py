"""M alone with DUET's adaptive λ (``duet_verl.experiments.adaptive_penalty``): the penalty lands on each training
rollout's last-token score, validation is left alone, and λ follows DUET's rule, each step penalised at the λ read
before that step's update. Its run through verl's trainer is in ``tests/cpu/test_cpu_grpo_e2e.py``."""

import subprocess
import sys

import pytest
import torch
from verl import DataProto

from duet_verl.core.lambda_schedule import LambdaSchedule
from duet_verl.experiments.adaptive_penalty import LAMBDA_METRIC, PenalisedRollouts, _trainer_class, penalise


def rollout(lengths: list[int], width: int = 6, score: float = 1.0) -> DataProto:
    """A rollout as verl's agent loop returns it: each response's score at its last token."""
    mask, scores = torch.zeros(len(lengths), width), torch.zeros(len(lengths), width)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        scores[row, length - 1] = score
    return DataProto.from_dict({"response_mask": mask, "rm_scores": scores})


def test_the_penalty_lands_on_each_responses_last_token():
    out = rollout([2, 6])
    lengths = penalise(out.batch["rm_scores"], out.batch["response_mask"], lam=0.5, length_bound=4.0)
    assert lengths.tolist() == [2, 6]
    assert out.batch["rm_scores"][0, 1].item() == pytest.approx(1 - 0.5 * 2 / 4)
    assert out.batch["rm_scores"][1, 5].item() == pytest.approx(1 - 0.5 * 6 / 4)
    assert out.batch["rm_scores"].sum(-1).tolist() == pytest.approx([0.75, 0.25]), "nothing else moved"


class Manager:
    """Stands in for verl's agent-loop manager: hands out the given rollouts in order."""

    def __init__(self, rollouts: list[DataProto]):
        self.rollouts, self.replicas = rollouts, ["server"]

    def generate_sequences(self, batch: DataProto) -> DataProto:
        return self.rollouts.pop(0)


def request(step: int, validate: bool = False) -> DataProto:
    return DataProto.from_dict({"input_ids": torch.zeros(2, 1)}, meta_info={"global_steps": step, "validate": validate})


def test_training_steps_follow_duets_rule_and_validation_is_left_alone():
    schedule = LambdaSchedule("adaptive", eta=0.5, length_bound=2.0)
    manager = PenalisedRollouts(Manager([rollout([4, 4]) for _ in range(4)]), schedule)
    paid = []
    first = manager.generate_sequences(request(1))  # λ = 0, then λ ← 0 + 0.5 · (4 / 2 − 1) = 0.5
    paid.append(manager.last_lambda)
    validation = manager.generate_sequences(request(1, validate=True))
    paid.append(manager.last_lambda)
    second = manager.generate_sequences(request(2))  # λ = 0.5: 0.5 · 4 / 2 = 1 off each score, then λ ← 1
    paid.append(manager.last_lambda)
    third = manager.generate_sequences(request(3))  # λ = 1 (its cap)
    paid.append(manager.last_lambda)
    assert first.batch["rm_scores"].sum(-1).tolist() == [1.0, 1.0]
    assert validation.batch["rm_scores"].sum(-1).tolist() == [1.0, 1.0]
    assert second.batch["rm_scores"].sum(-1).tolist() == [0.0, 0.0]
    assert third.batch["rm_scores"].sum(-1).tolist() == [-1.0, -1.0]
    assert (schedule.value, schedule.num_updates) == (1.0, 3), "validation does not move λ"
    assert paid == [0.0, 0.0, 0.5, 1.0], "each training rollout's λ, as its penalty used it"
    assert manager.replicas == ["server"], "the rest is verl's manager's own"


def test_each_steps_metrics_carry_the_lambda_its_penalty_used(monkeypatch):
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    balanced = []
    monkeypatch.setattr(RayPPOTrainer, "_balance_batch", lambda self, batch, metrics, **kw: balanced.append(batch))
    trainer_class = _trainer_class()
    trainer = trainer_class.__new__(trainer_class)  # no workers: only the step's metrics pass is exercised
    trainer.async_rollout_manager = PenalisedRollouts(Manager([]), LambdaSchedule("adaptive"))
    trainer.async_rollout_manager.last_lambda = 0.25
    metrics = {"response_length/mean": 30.0}
    trainer._balance_batch("batch", metrics=metrics)
    assert metrics == {"response_length/mean": 30.0, LAMBDA_METRIC: 0.25} and balanced == ["batch"]


def test_it_refuses_verls_v1_trainer_which_would_train_without_the_penalty():
    proc = subprocess.run(
        [sys.executable, "-m", "duet_verl.experiments.adaptive_penalty", "trainer.total_training_steps=2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "pass trainer.use_v1=false" in proc.stderr
