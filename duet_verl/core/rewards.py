"""DUET rewards (docs/method.md, "Rewards"), vectorised over one training step.

For M response i, with guided m answers j linked by ``small_parent[j] == i``:

    r_Mm(i) = mean_j score_j          penalty(i) = λ · L_i / B          R_M(i) = r_Mm(i) − r_m(i) − penalty(i)

r_m (marginal utility) is the mean score of m's baseline answers (question only, thinking off):

- ``off``: no baseline answers, r_m = 0 (``DuetRewards.baseline_accuracy`` is None);
- ``per_signal`` (paper): k baseline answers per M response; ``baseline_parent[j]`` = the M row;
- ``per_prompt``: k baseline answers per question; ``baseline_parent[j]`` = a question index and
  ``large_question[i]`` = the question index of M row i. Under GRPO subtracting one constant from every reward
  of a group changes no advantage, so this trains exactly like ``off`` (4× cheaper than ``per_signal``,
  which only adds noise in expectation); it is offered for the r_m metric and for comparison.

m's reward is its own 0/1 score (no length term). The length measure is the caller's choice of
``large_lengths``: ``response_lengths`` (paper: the whole response) or ``thinking_lengths`` (up to ``</think>``).
Ids link rows, never positions, so any n and k (even uneven ones) work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MARGINAL_UTILITY_MODES = ("off", "per_signal", "per_prompt")
LENGTH_MEASURES = ("response", "thinking")


@dataclass(frozen=True)
class DuetRewards:
    """Per M row (float64, shape ``[num_large]``); the paper's symbols in brackets."""

    guided_accuracy: np.ndarray  # [r_Mm] mean score of m's answers that read this row's signal
    baseline_accuracy: np.ndarray | None  # [r_m] mean score of m's answers without a signal; None when off
    length_penalty: np.ndarray  # λ · L / B
    large_reward: np.ndarray  # [R_M] r_Mm − r_m − λ · L / B


def _vector(values, name: str, dtype) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if dtype is np.int64 and array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer row ids, got dtype {array.dtype}")
    array = array.astype(dtype)
    if dtype is np.float64 and not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def _mean_per_parent(scores, parents, num_parents: int, what: str, needed=None) -> np.ndarray:
    """Mean score per parent id in ``[0, num_parents)``; every parent in ``needed`` (default: all) needs answers."""
    scores = _vector(scores, f"{what} scores", np.float64)
    parents = _vector(parents, f"{what} parent ids", np.int64)
    if scores.shape != parents.shape:
        raise ValueError(f"{what}: {scores.shape[0]} scores but {parents.shape[0]} parent ids")
    if parents.size and (parents.min() < 0 or parents.max() >= num_parents):
        raise ValueError(f"{what}: parent ids must lie in [0, {num_parents}), got [{parents.min()}, {parents.max()}]")
    counts = np.bincount(parents, minlength=num_parents)
    needed = np.arange(num_parents) if needed is None else needed
    missing = np.unique(needed[counts[needed] == 0])
    if missing.size:
        raise ValueError(f"{what}: no answers for {missing.size} parent(s), e.g. {missing[:5].tolist()}")
    return np.bincount(parents, weights=scores, minlength=num_parents) / np.maximum(counts, 1)


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
    """M's rewards for one step (module docstring: formula and id conventions). Accepts numpy or torch 1-D.

    Raises ValueError for an unknown mode, mismatched shapes, ids out of range, an M row without guided
    answers, a parent without baseline answers, or baseline answers given while marginal utility is off.
    """
    if marginal_utility not in MARGINAL_UTILITY_MODES:
        raise ValueError(f"marginal_utility={marginal_utility!r}; valid: {list(MARGINAL_UTILITY_MODES)}")
    if not (np.isfinite(length_bound) and length_bound > 0):
        raise ValueError(f"length_bound must be > 0, got {length_bound}")
    if not np.isfinite(lam):
        raise ValueError(f"lam must be finite, got {lam}")
    if num_large <= 0:
        raise ValueError(f"num_large must be > 0, got {num_large}")
    lengths = _vector(large_lengths, "large_lengths", np.float64)
    if lengths.shape != (num_large,):
        raise ValueError(f"large_lengths has {lengths.shape[0]} entries for {num_large} M rows")
    if (lengths < 0).any():
        raise ValueError("large_lengths must be >= 0")
    guided = _mean_per_parent(small_scores, small_parent, num_large, "guided m answers")

    baseline = None
    if marginal_utility == "off":
        if baseline_scores is not None:
            raise ValueError("baseline_scores given but marginal_utility='off': they would be ignored")
    elif baseline_scores is None or baseline_parent is None:
        raise ValueError(f"marginal_utility={marginal_utility!r} needs baseline_scores and baseline_parent")
    elif marginal_utility == "per_signal":
        baseline = _mean_per_parent(baseline_scores, baseline_parent, num_large, "baseline m answers")
    else:
        if large_question is None:
            raise ValueError("marginal_utility='per_prompt' needs large_question (question index of each M row)")
        questions = _vector(large_question, "large_question", np.int64)
        if questions.shape != (num_large,) or (questions < 0).any():
            raise ValueError(f"large_question must hold {num_large} non-negative question indices")
        parents = _vector(baseline_parent, "baseline_parent", np.int64)
        num_questions = int(max(questions.max(), parents.max() if parents.size else 0)) + 1
        per_question = _mean_per_parent(baseline_scores, parents, num_questions, "baseline m answers", questions)
        baseline = per_question[questions]

    penalty = lam * lengths / length_bound
    reward = guided - penalty if baseline is None else guided - baseline - penalty
    return DuetRewards(guided_accuracy=guided, baseline_accuracy=baseline, length_penalty=penalty, large_reward=reward)


def response_lengths(response_mask: torch.Tensor) -> np.ndarray:
    """The paper's length: every valid response token (thinking and answer), per row."""
    return response_mask.sum(-1).cpu().numpy().astype(np.float64)


def thinking_lengths(responses: torch.Tensor, response_mask: torch.Tensor, think_end_id: int) -> np.ndarray:
    """Valid tokens up to and including the first ``</think>``, or all valid tokens if there is none
    (vectorised ``signal.thinking_token_count``)."""
    is_end = (responses == think_end_id) & response_mask.bool()
    first_end = is_end.int().argmax(-1) + 1
    lengths = torch.where(is_end.any(-1), first_end, response_mask.sum(-1).to(first_end.dtype))
    return lengths.cpu().numpy().astype(np.float64)


def place_on_last_token(scores: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` float32 token-level rewards: row b's scalar on its last valid token (last index with mask 1).

    A row with an empty response gets its scalar on position 0. The mask makes that position inert in the
    loss, but GRPO sums each row's rewards, so the score still counts in its group's statistics as it should.
    """
    scores = torch.as_tensor(scores)
    if scores.dim() != 1 or response_mask.dim() != 2 or scores.shape[0] != response_mask.shape[0]:
        shapes = f"{tuple(scores.shape)} and {tuple(response_mask.shape)}"
        raise ValueError(f"need scores [B] and response_mask [B, T], got {shapes}")
    if response_mask.shape[1] == 0:
        raise ValueError("response_mask has no token positions to put a reward on")
    positions = torch.arange(response_mask.shape[1], device=response_mask.device)
    last = torch.where(response_mask != 0, positions, -1).amax(-1).clamp(min=0)  # -1 (empty row) → 0
    rewards = torch.zeros(response_mask.shape, dtype=torch.float32, device=response_mask.device)
    rewards[torch.arange(response_mask.shape[0], device=response_mask.device), last] = scores.to(rewards)
    return rewards
