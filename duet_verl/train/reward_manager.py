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
            return {
                "reward_score": result.score,
                "reward_extra_info": {"acc": result.score, "pred": result.prediction or ""},
            }
        # A custom function also learns the response's token count, through extra_info["response_length"].
        extra_info = {**(item.non_tensor_batch.get("extra_info") or {}), "response_length": valid_length}
        kwargs = {
            "data_source": data_source,
            "solution_str": text,
            "ground_truth": ground_truth,
            "extra_info": extra_info,
        }
        if inspect.iscoroutinefunction(self.compute_score):
            result = await self.compute_score(**kwargs)
        else:
            result = await self.loop.run_in_executor(None, lambda: self.compute_score(**kwargs))
        if isinstance(result, dict):  # verl's convention: {"score": ..., other metrics}
            score = float(result["score"])
            return {"reward_score": score, "reward_extra_info": {"acc": score, "pred": "", **result}}
        return {"reward_score": float(result), "reward_extra_info": {"acc": float(result), "pred": ""}}


def length_penalized_score(data_source, solution_str, ground_truth, extra_info, lam: float, length_bound: float):
    """The paper's "M alone" variant as a verl custom reward function: the DUET score of M's own answer minus
    ``lam · L / length_bound``, L = the response's tokens (constant λ: verl's single-model trainer keeps no λ state).

        reward.custom_reward_function.path=pkg://duet_verl.train.reward_manager
        reward.custom_reward_function.name=length_penalized_score
        +reward.custom_reward_function.reward_kwargs.lam=0.5
        +reward.custom_reward_function.reward_kwargs.length_bound=40
    """
    correct = score_answer(data_source, solution_str, ground_truth).score
    penalty = float(lam) * extra_info["response_length"] / float(length_bound)
    return {"score": correct - penalty, "acc": correct, "length_penalty": penalty}
