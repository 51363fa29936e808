"""GRPO group ids, checked with verl's own GRPO advantage (docs/method.md, "GRPO groups", and its note on
marginal utility)."""

import numpy as np
import pytest
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

from duet_verl.core import compute_duet_rewards, place_on_last_token, small_group_ids


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [("question", ["q1", "q1", "q1", "q2"]), ("signal", ["q1/0", "q1/0", "q1/1", "q2/2"])],
)
def test_small_group_ids(grouping, expected):
    ids = small_group_ids(["q1", "q1", "q1", "q2"], np.array([0, 0, 1, 2]), grouping)
    assert ids.tolist() == expected and ids.dtype == object


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["q"], [0], "prompt"), r"small_grouping='prompt'; valid: \['question', 'signal'\]"),
        ((["q", "q"], [0], "signal"), "2 question uids but 1 M rows"),
    ],
)
def test_bad_grouping(args, message):
    with pytest.raises(ValueError, match=message):
        small_group_ids(*args)


def grpo(rewards, group_ids, mask=None) -> torch.Tensor:
    """verl's GRPO advantage of per-row scalar rewards placed on the last token."""
    mask = torch.ones(len(rewards), 5) if mask is None else mask
    scores = place_on_last_token(torch.as_tensor(np.asarray(rewards), dtype=torch.float32), mask)
    advantages, _ = compute_grpo_outcome_advantage(scores, mask, group_ids, epsilon=1e-6, norm_adv_by_std_in_grpo=True)
    return advantages


QUESTIONS, N, K = 4, 4, 4


def paper_step(seed=0):
    rng = np.random.default_rng(seed)
    num_large = QUESTIONS * N
    return rng, dict(
        small_scores=rng.integers(0, 2, num_large * K).astype(float),
        small_parent=np.repeat(np.arange(num_large), K),
        num_large=num_large,
        large_lengths=rng.integers(10, 3000, num_large),
        lam=0.3,
        length_bound=1000,
    )


@pytest.mark.parametrize("seed", range(5))
def test_per_prompt_marginal_utility_gives_the_same_m_advantages_as_off(seed):
    """A per-question r_m is one constant inside each GRPO group of M, so mean-centring cancels it."""
    rng, step = paper_step(seed)
    uids = np.array([f"q{i // N}" for i in range(QUESTIONS * N)], dtype=object)  # M's groups: questions
    question_of_row = np.repeat(np.arange(QUESTIONS), N)
    off = compute_duet_rewards(**step, marginal_utility="off")
    per_prompt = compute_duet_rewards(
        **step, marginal_utility="per_prompt", baseline_scores=rng.random(QUESTIONS * K).round(),
        baseline_parent=np.repeat(np.arange(QUESTIONS), K), large_question=question_of_row,
    )  # fmt: skip
    assert not np.allclose(off.large_reward, per_prompt.large_reward), "the baseline must actually shift the rewards"
    torch.testing.assert_close(grpo(off.large_reward, uids), grpo(per_prompt.large_reward, uids), atol=1e-5, rtol=0)


def test_per_signal_baseline_changes_m_advantages():
    """The comparison above can fail: a baseline that differs inside a group moves that group's advantages."""
    _, step = paper_step(1)
    uids = np.array([f"q{i // N}" for i in range(QUESTIONS * N)], dtype=object)  # M's groups: questions
    baseline = np.zeros(QUESTIONS * N * K)
    baseline[:K] = 1.0  # row 0 gets r_m = 1, its group-mates 0
    off = compute_duet_rewards(**step, marginal_utility="off")
    per_signal = compute_duet_rewards(
        **step, marginal_utility="per_signal", baseline_scores=baseline,
        baseline_parent=np.repeat(np.arange(QUESTIONS * N), K),
    )  # fmt: skip
    diff = (grpo(off.large_reward, uids) - grpo(per_signal.large_reward, uids)).abs().sum(-1)
    assert diff[:N].min() > 1e-3 and diff[N:].max() < 1e-5  # only question 0's group moves


def test_small_grouping_by_signal_compares_answers_to_one_signal_only():
    """Two signals of one question: with m grouped by signal, answers are centred per signal."""
    scores = np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=float)  # signal 0: 3/4 right, signal 1: 1/4 right
    parents = np.repeat([0, 1], 4)
    question_uids = ["q"] * 8
    by_question = grpo(scores, small_group_ids(question_uids, parents, "question"))[:, -1].numpy()
    by_signal = grpo(scores, small_group_ids(question_uids, parents, "signal"))[:, -1].numpy()
    # by question: every right answer has the same advantage; by signal: a right answer under the weaker signal
    # stands out more (it beat the other answers to that signal)
    assert by_question[0] == pytest.approx(by_question[7], abs=1e-6)
    assert by_signal[7] > by_signal[0] > 0
    for signal in (0, 1):
        assert by_signal[parents == signal].sum() == pytest.approx(0.0, abs=1e-5)


def test_rewards_on_the_last_token_feed_grpo_for_uneven_lengths():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    advantages = grpo([1.0, 0.0, 1.0, 0.0], np.array(["a", "a", "b", "b"], dtype=object), mask)
    expected_row = torch.tensor([0.7071, -0.7071, 0.7071, -0.7071])  # (x - mean) / std, unbiased std of {0, 1}
    torch.testing.assert_close(advantages, expected_row[:, None] * mask, atol=1e-4, rtol=0)
