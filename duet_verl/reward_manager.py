"""The DUET reward manager for verl's reward loop: scores m's answers against the ground truth.

Plugged in with ``reward.reward_manager.source=importlib`` (set in ``duet_trainer.yaml``), so no registration
has to happen in the reward-loop processes. It scores 1.0/0.0 with ``duet_verl.core.scoring`` (routed by
``data_source``) unless the user configured ``reward.custom_reward_function``, which then replaces that scorer.
verl's ``load_reward_manager`` hands every manager a ``compute_score``: the custom function when one is
configured, else verl's own ``default_compute_score``, which knows neither ``deepscaler`` nor GPQA and scores
``aime*`` with DAPO's ``Answer:`` rule. So the manager decides from the config, not from what it was handed.
M's reward is computed by the trainer from these scores.
"""

from __future__ import annotations

import inspect
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from duet_verl.core.scoring import score_answer


def uses_custom_reward_function(config) -> bool:
    """Whether ``reward.custom_reward_function.path`` is set (verl's own test for a custom scorer)."""
    reward = config.get("reward") or {}
    return bool((reward.get("custom_reward_function") or {}).get("path"))


class DuetRewardManager(RewardManagerBase):
    """Score one m answer: ``reward_score`` plus ``acc`` and the extracted prediction ``pred``."""

    def __init__(self, config, tokenizer, compute_score=None, **kwargs: Any):
        super().__init__(config, tokenizer, compute_score if uses_custom_reward_function(config) else None)

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]
        response_ids = item.batch["responses"]
        valid_length = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        text = self.tokenizer.decode(response_ids[:valid_length], skip_special_tokens=True)
        data_source = str(item.non_tensor_batch["data_source"])
        ground_truth = str(item.non_tensor_batch["reward_model"]["ground_truth"])
        if self.compute_score is None:
            result = await self.loop.run_in_executor(None, score_answer, data_source, text, ground_truth)
            score, prediction = result.score, result.prediction or ""
        else:
            kwargs = {"data_source": data_source, "solution_str": text, "ground_truth": ground_truth,
                      "extra_info": item.non_tensor_batch.get("extra_info", {})}  # fmt: skip
            if inspect.iscoroutinefunction(self.compute_score):
                score = await self.compute_score(**kwargs)
            else:
                score = await self.loop.run_in_executor(None, lambda: self.compute_score(**kwargs))
            prediction = ""
        return {"reward_score": float(score), "reward_extra_info": {"acc": float(score), "pred": prediction}}
