"""DuetRewardManager as verl's reward loop calls it: one DataProto row in, a score and extra info out."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto

from duet_verl.reward_manager import DuetRewardManager


def run_manager(tokenizer, row: DataProto, compute_score=None) -> dict:
    """Build the manager inside the running loop, as verl's reward-loop worker does, and score one row."""

    async def run():
        manager = DuetRewardManager(OmegaConf.create({}), tokenizer, compute_score=compute_score)
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

    result = run_manager(tiny_tokenizer, answer_row(tiny_tokenizer, "\\boxed{5}", "tiny_math", "5"), compute_score)
    assert result["reward_score"] == 0.25
    assert seen == {"data_source": "tiny_math", "solution_str": "\\boxed{5}", "ground_truth": "5"}
