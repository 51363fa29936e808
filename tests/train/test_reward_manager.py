"""DuetRewardManager as verl's reward loop builds and calls it: one DataProto row in, a score and extra info out."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo.reward import load_reward_manager

from duet_verl.core import score_answer
from duet_verl.train.reward_manager import DuetRewardManager


def run_manager(tokenizer, row: DataProto, compute_score=None, config: dict | None = None) -> dict:
    """Build the manager inside the running loop, as verl's reward-loop worker does, and score one row."""

    async def run():
        manager = DuetRewardManager(OmegaConf.create(config or {}), tokenizer, compute_score=compute_score)
        return await manager.run_single(row)

    return asyncio.run(run())


def answer_row(tokenizer, response: str, data_source: str, truth: str) -> DataProto:
    prompt = tokenizer("What is 2 + 3?", add_special_tokens=False)["input_ids"]
    answer = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    padded = answer + [tokenizer.pad_token_id] * 3
    return DataProto.from_dict(
        tensors={
            "prompts": torch.tensor([prompt]),
            "responses": torch.tensor([padded]),
            "attention_mask": torch.tensor([[1] * (len(prompt) + len(answer)) + [0] * 3]),
        },
        non_tensors={
            "data_source": np.array([data_source], dtype=object),
            "reward_model": np.array([{"ground_truth": truth, "style": "rule"}], dtype=object),
            "extra_info": np.array([{}], dtype=object),
        },
    )


@pytest.mark.parametrize(
    ("response", "source", "truth", "score", "pred"),
    [
        ("so the answer is \\boxed{5}", "math500", "5", 1.0, "5"),
        ("so the answer is \\boxed{6}", "math500", "5", 0.0, "6"),
        ("Answer: B", "gpqa_diamond", "B", 1.0, "B"),
    ],
)
def test_scores_with_the_duet_scorer(tiny_tokenizer, response, source, truth, score, pred):
    result = run_manager(tiny_tokenizer, answer_row(tiny_tokenizer, response, source, truth))
    assert result == {"reward_score": score, "reward_extra_info": {"acc": score, "pred": pred}}


def test_custom_reward_function_replaces_the_scorer(tiny_tokenizer):
    seen = {}

    def compute_score(data_source, solution_str, ground_truth, extra_info):
        seen.update(data_source=data_source, solution_str=solution_str, ground_truth=ground_truth)
        return 0.25

    custom = {"reward": {"custom_reward_function": {"path": "my_rewards.py", "name": "compute_score"}}}
    row = answer_row(tiny_tokenizer, "\\boxed{5}", "tiny_math", "5")
    assert run_manager(tiny_tokenizer, row, compute_score, custom)["reward_score"] == 0.25
    assert run_manager(tiny_tokenizer, row, compute_score)["reward_score"] == 1.0, "no custom function configured"
    assert seen == {"data_source": "tiny_math", "solution_str": "\\boxed{5}", "ground_truth": "5"}


def score_with_verl_loaded_manager(tokenizer, row: DataProto, *overrides: str) -> dict:
    """Build the manager exactly as verl's reward-loop worker does (``load_reward_manager`` on the DUET trainer
    config) and score one row."""
    with initialize_config_module(config_module="duet_verl.config", version_base=None):
        config = compose(config_name="duet_trainer", overrides=list(overrides))

    async def run():
        return await load_reward_manager(config, tokenizer).run_single(row)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("source", "response", "truth", "score"),
    [
        ("deepscaler", "so \\boxed{\\frac{1}{2}}", "\\frac12", 1.0),  # unknown to verl's default: NotImplementedError
        ("aime24", "the answer is \\boxed{204}", "204", 1.0),  # verl's default wants DAPO's "Answer:" line: 0.0
        ("math500", "\\boxed{3}", "4", 0.0),
        ("gpqa_diamond", "Answer: C", "C", 1.0),  # unknown to verl's default
        ("gpqa_diamond", "Answer: A", "C", 0.0),
    ],
)
def test_verl_loaded_manager_scores_with_the_duet_scorer(tiny_tokenizer, source, response, truth, score):
    """verl hands every manager its ``default_compute_score`` when no custom function is set; the DUET scorer
    must decide all the same."""
    result = score_with_verl_loaded_manager(tiny_tokenizer, answer_row(tiny_tokenizer, response, source, truth))
    assert result["reward_score"] == score == score_answer(source, response, truth).score


def test_verl_loaded_manager_uses_a_configured_custom_function(tiny_tokenizer):
    result = score_with_verl_loaded_manager(
        tiny_tokenizer,
        answer_row(tiny_tokenizer, "7 8", "math500", "5"),
        "reward.custom_reward_function.path=pkg://duet_verl.worlds.tiny",
        "reward.custom_reward_function.name=compute_score",
    )
    assert result["reward_score"] == pytest.approx(2 / 3)  # the shaped tiny reward: the fraction of digits


def test_length_penalized_score_is_m_alone_with_the_penalty(tiny_tokenizer):
    """The paper's "M alone + length penalty" baseline: M's own DUET score minus λ·L/B, L in response tokens."""
    row = answer_row(tiny_tokenizer, "so \\boxed{5}", "math500", "5")
    length = int(row.batch["attention_mask"][0, -row.batch["responses"].shape[-1] :].sum())
    result = score_with_verl_loaded_manager(
        tiny_tokenizer,
        row,
        "reward.custom_reward_function.path=pkg://duet_verl.train.reward_manager",
        "reward.custom_reward_function.name=length_penalized_score",
        "+reward.custom_reward_function.reward_kwargs.lam=0.5",
        "+reward.custom_reward_function.reward_kwargs.length_bound=40",
    )
    assert result["reward_score"] == pytest.approx(1.0 - 0.5 * length / 40)
    assert result["reward_extra_info"]["acc"] == 1.0
    assert result["reward_extra_info"]["length_penalty"] == pytest.approx(0.5 * length / 40)
