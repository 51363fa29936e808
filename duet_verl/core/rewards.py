"""DUET rewards (DUET.md, step 6), vectorised over a training step.

For M response i with guided m answers j (``small_parent[j] == i``):
    r_Mm(i) = mean_j score_j,   penalty(i) = λ · L_i / B,   R_M(i) = r_Mm(i) − r_m(i) − penalty(i)
where r_m(i) (marginal utility) is the mean score of m's baseline answers (question only):
- ``off``: r_m = 0;
- ``per_signal`` (paper): baseline answers drawn for every M response (``baseline_parent`` = M row);
- ``per_prompt``: baseline answers drawn once per question (``baseline_parent`` = question index, and
  ``large_question[i]`` maps M row i to its question). Under GRPO a per-question constant changes no
  advantage, so this equals ``off``; it is offered for its r_m metric.
m's reward is its own score. The length measure (whole response or thinking only) is the caller's choice
of ``large_lengths``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MARGINAL_UTILITY_MODES = ("off", "per_signal", "per_prompt")


@dataclass(frozen=True)
class DuetRewards:
    r_Mm: np.ndarray
    r_m: np.ndarray | None
    length_penalty: np.ndarray
    R_M: np.ndarray


def _group_mean(values: np.ndarray, groups: np.ndarray, num_groups: int, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    if values.shape != groups.shape:
        raise ValueError(f"{what}: {values.shape[0]} scores but {groups.shape[0]} parent ids")
    if groups.size and (groups.min() < 0 or groups.max() >= num_groups):
        raise ValueError(f"{what}: parent ids must lie in [0, {num_groups})")
    counts = np.bincount(groups, minlength=num_groups)
    if (counts == 0).any():
        raise ValueError(f"{what}: no answers for rows {np.flatnonzero(counts == 0)[:5].tolist()}")
    return np.bincount(groups, weights=values, minlength=num_groups) / counts


def compute_duet_rewards(
    small_scores,
    small_parent,
    num_large: int,
    large_lengths,
    lam: float,
    length_bound: float,
    marginal_utility: str = "off",
    baseline_scores=None,
    baseline_parent=None,
    large_question=None,
) -> DuetRewards:
    """Per-M-row rewards; see the module docstring for the formula and the id conventions."""
    if marginal_utility not in MARGINAL_UTILITY_MODES:
        raise ValueError(f"marginal_utility={marginal_utility!r}; valid: {list(MARGINAL_UTILITY_MODES)}")
    if length_bound <= 0:
        raise ValueError(f"length_bound must be > 0, got {length_bound}")
    lengths = np.asarray(large_lengths, dtype=np.float64)
    if lengths.shape != (num_large,):
        raise ValueError(f"large_lengths has shape {lengths.shape}, expected ({num_large},)")
    r_mm = _group_mean(small_scores, small_parent, num_large, "guided m answers")
    r_m = None
    if marginal_utility != "off":
        if baseline_scores is None or baseline_parent is None:
            raise ValueError(f"marginal_utility={marginal_utility!r} needs baseline_scores and baseline_parent")
        if marginal_utility == "per_signal":
            r_m = _group_mean(baseline_scores, baseline_parent, num_large, "baseline m answers")
        else:
            if large_question is None:
                raise ValueError("marginal_utility='per_prompt' needs large_question (question index of each M row)")
            large_question = np.asarray(large_question, dtype=np.int64)
            per_question = _group_mean(baseline_scores, baseline_parent, int(large_question.max()) + 1, "baseline")
            r_m = per_question[large_question]
    penalty = lam * lengths / length_bound
    reward = r_mm - (r_m if r_m is not None else 0.0) - penalty
    return DuetRewards(r_Mm=r_mm, r_m=r_m, length_penalty=penalty, R_M=reward)


def place_on_last_token(scores: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Token-level reward tensor with each row's scalar on its last valid response token (position 0 for an
    empty response, where verl's masks make it inert)."""
    if scores.shape[0] != response_mask.shape[0]:
        raise ValueError(f"{scores.shape[0]} scores for {response_mask.shape[0]} responses")
    rewards = torch.zeros(response_mask.shape, dtype=torch.float32, device=response_mask.device)
    last = (response_mask.sum(-1) - 1).clamp(min=0).long()
    rewards[torch.arange(rewards.shape[0], device=rewards.device), last] = scores.to(torch.float32)
    return rewards
