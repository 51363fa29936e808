import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from duet_verl.core import (
    compute_duet_rewards,
    place_on_last_token,
    response_lengths,
    thinking_lengths,
    thinking_token_count,
)

# Three M rows: rows 0 and 1 answer question 0, row 2 answers question 1; k = 2 guided answers each.
SMALL_SCORES = [1, 0, 1, 1, 0, 0]
SMALL_PARENT = [0, 0, 1, 1, 2, 2]
LENGTHS = [100, 500, 2000]
LARGE_QUESTION = [0, 0, 1]
# r_Mm = [0.5, 1, 0]; with λ = 0.5, B = 1000: penalty = [0.05, 0.25, 1.0]


@pytest.mark.parametrize(
    ("mode", "baseline_scores", "baseline_parent", "r_m", "reward"),
    [
        ("off", None, None, None, [0.45, 0.75, -1.0]),
        ("per_signal", [1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 2, 2], [1.0, 0.0, 0.5], [-0.55, 0.75, -1.5]),
        ("per_prompt", [1, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1], [0.25, 0.25, 1.0], [0.2, 0.5, -2.0]),
        ("per_prompt", [0, 1], [1, 0], [1.0, 1.0, 0.0], [-0.55, -0.25, -1.0]),  # k = 1, ids out of order
    ],
)
def test_rewards_by_hand(mode, baseline_scores, baseline_parent, r_m, reward):
    rewards = compute_duet_rewards(
        SMALL_SCORES, SMALL_PARENT, 3, LENGTHS, lam=0.5, length_bound=1000, marginal_utility=mode,
        baseline_scores=baseline_scores, baseline_parent=baseline_parent, large_question=LARGE_QUESTION,
    )  # fmt: skip
    np.testing.assert_allclose(rewards.guided_accuracy, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(rewards.length_penalty, [0.05, 0.25, 1.0])
    np.testing.assert_allclose(rewards.large_reward, reward)
    if r_m is None:
        assert rewards.baseline_accuracy is None
    else:
        np.testing.assert_allclose(rewards.baseline_accuracy, r_m)


def test_rows_are_linked_by_ids_not_positions_and_k_may_differ():
    scores, parents = [0, 1, 1, 0, 1], [2, 0, 1, 2, 2]  # row 0: one answer, row 2: three
    rewards = compute_duet_rewards(scores, parents, 3, [0, 0, 0], lam=0.0, length_bound=1)
    np.testing.assert_allclose(rewards.guided_accuracy, [1.0, 1.0, 1 / 3])


def test_torch_inputs_work_like_numpy():
    as_torch = compute_duet_rewards(
        torch.tensor(SMALL_SCORES, dtype=torch.float32), torch.tensor(SMALL_PARENT), 3,
        torch.tensor(LENGTHS), lam=0.5, length_bound=1000,
    )  # fmt: skip
    np.testing.assert_allclose(as_torch.large_reward, [0.45, 0.75, -1.0])


def valid(**overrides):
    kwargs = dict(
        small_scores=SMALL_SCORES, small_parent=SMALL_PARENT, num_large=3, large_lengths=LENGTHS, lam=0.5,
        length_bound=1000, marginal_utility="off",
    )  # fmt: skip
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"marginal_utility": "per_batch"},
            r"marginal_utility='per_batch'; valid: \['off', 'per_signal', 'per_prompt'\]",
        ),
        ({"small_parent": [0, 0, 0, 0, 2, 2]}, r"guided m answers: no answers for 1 parent\(s\), e.g. \[1\]"),
        ({"small_parent": [0, 0, 1, 1, 2]}, "6 scores but 5 parent ids"),
        ({"small_parent": [0, 0, 1, 1, 2, 3]}, r"parent ids must lie in \[0, 3\)"),
        ({"small_parent": [0, 0, 1, 1, 2, -1]}, r"parent ids must lie in \[0, 3\)"),
        ({"small_parent": [0.0, 0, 1, 1, 2, 2]}, "integer row ids"),
        ({"small_scores": [[1, 0, 1, 1, 0, 0]]}, "one-dimensional"),
        ({"small_scores": [1, 0, 1, 1, 0, float("nan")]}, "must be finite"),
        ({"large_lengths": [1, 2]}, "large_lengths has 2 entries for 3 M rows"),
        ({"large_lengths": [1, -2, 3]}, "large_lengths must be >= 0"),
        ({"length_bound": 0}, "length_bound must be > 0"),
        ({"lam": float("inf")}, "lam must be finite"),
        ({"num_large": 0}, "num_large must be > 0"),
        ({"baseline_scores": [1] * 6, "baseline_parent": SMALL_PARENT}, "marginal_utility='off'"),
        ({"marginal_utility": "per_signal"}, "needs baseline_scores and baseline_parent"),
        (
            {"marginal_utility": "per_signal", "baseline_scores": [1, 1], "baseline_parent": [0, 1]},
            r"baseline m answers: no answers for 1 parent\(s\), e.g. \[2\]",
        ),
        ({"marginal_utility": "per_prompt", "baseline_scores": [1], "baseline_parent": [0]}, "needs large_question"),
        (
            {
                "marginal_utility": "per_prompt",
                "baseline_scores": [1],
                "baseline_parent": [0],
                "large_question": [0, 0, 1],
            },
            r"baseline m answers: no answers for 1 parent\(s\), e.g. \[1\]",
        ),
        (
            {
                "marginal_utility": "per_prompt",
                "baseline_scores": [1],
                "baseline_parent": [0],
                "large_question": [0, 0],
            },
            "large_question must hold 3",
        ),
    ],
)
def test_bad_inputs_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        compute_duet_rewards(**valid(**overrides))


def test_per_prompt_needs_baselines_only_for_questions_in_the_batch():
    rewards = compute_duet_rewards(**valid(
        marginal_utility="per_prompt", baseline_scores=[1, 0], baseline_parent=[0, 2], large_question=[0, 0, 2],
    ))  # fmt: skip
    np.testing.assert_allclose(rewards.baseline_accuracy, [1.0, 1.0, 0.0])


# ---------------------------------------------------------------------------------------------- properties
@st.composite
def steps(draw):
    """A random step: q questions, n M rows each, 1..4 guided and baseline answers per row (0/1 scores)."""
    q, n = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    num_large = q * n
    small_k = draw(st.lists(st.integers(1, 4), min_size=num_large, max_size=num_large))
    small_parent = np.repeat(np.arange(num_large), small_k)
    small_scores = np.array(
        draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(small_parent), max_size=len(small_parent)))
    )
    lengths = np.array(draw(st.lists(st.integers(0, 20_000), min_size=num_large, max_size=num_large)), dtype=float)
    baseline_parent = np.repeat(np.arange(num_large), 2)
    baseline_scores = np.array(
        draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=2 * num_large, max_size=2 * num_large))
    )
    lam = draw(st.floats(0.0, 1.0))
    return dict(
        small_scores=small_scores, small_parent=small_parent, num_large=num_large, large_lengths=lengths, lam=lam,
        length_bound=1000.0, baseline_scores=baseline_scores, baseline_parent=baseline_parent,
        large_question=np.repeat(np.arange(q), n),
    )  # fmt: skip


def loop_reference(step, mode):
    """The formula of docs/method.md ("Rewards"), one M row at a time."""
    rewards = []
    for i in range(step["num_large"]):
        guided = np.mean([s for s, p in zip(step["small_scores"], step["small_parent"], strict=True) if p == i])
        r_m = 0.0
        if mode == "per_signal":
            r_m = np.mean([s for s, p in zip(step["baseline_scores"], step["baseline_parent"], strict=True) if p == i])
        rewards.append(guided - r_m - step["lam"] * step["large_lengths"][i] / step["length_bound"])
    return np.array(rewards)


@settings(max_examples=60, deadline=None)
@given(steps(), st.sampled_from(["off", "per_signal"]))
def test_matches_the_formula_row_by_row(step, mode):
    if mode == "off":
        step = {**step, "baseline_scores": None, "baseline_parent": None}
    rewards = compute_duet_rewards(**step, marginal_utility=mode)
    np.testing.assert_allclose(rewards.large_reward, loop_reference(step, mode), atol=1e-12)
    assert ((0 <= rewards.guided_accuracy) & (rewards.guided_accuracy <= 1)).all()


@settings(max_examples=60, deadline=None)
@given(steps(), st.integers(0, 10**6))
def test_permuting_m_rows_changes_nothing(step, seed):
    order = np.random.default_rng(seed).permutation(len(step["small_scores"]))
    shuffled = {**step, "small_scores": step["small_scores"][order], "small_parent": step["small_parent"][order]}
    for mode in ("per_signal", "per_prompt"):
        np.testing.assert_allclose(
            compute_duet_rewards(**shuffled, marginal_utility=mode).large_reward,
            compute_duet_rewards(**step, marginal_utility=mode).large_reward,
            atol=1e-12,
        )


@settings(max_examples=60, deadline=None)
@given(steps(), st.integers(0, 10**6), st.integers(1, 5000))
def test_penalty_is_linear_and_monotone_in_length(step, row_seed, extra):
    step = {**step, "lam": max(step["lam"], 1e-3)}
    before = compute_duet_rewards(**step, marginal_utility="per_signal")
    row = row_seed % step["num_large"]
    longer = step["large_lengths"].copy()
    longer[row] += extra
    after = compute_duet_rewards(**{**step, "large_lengths": longer}, marginal_utility="per_signal")
    assert after.large_reward[row] < before.large_reward[row]
    np.testing.assert_allclose(
        before.large_reward[row] - after.large_reward[row], step["lam"] * extra / 1000.0, rtol=1e-9
    )
    others = np.arange(step["num_large"]) != row
    np.testing.assert_array_equal(after.large_reward[others], before.large_reward[others])
    np.testing.assert_allclose(before.length_penalty, step["lam"] * step["large_lengths"] / 1000.0)


@settings(max_examples=60, deadline=None)
@given(steps())
def test_per_prompt_shifts_each_question_by_one_constant(step):
    q_step = {**step, "baseline_parent": np.arange(len(step["baseline_scores"])) % (step["large_question"].max() + 1)}
    off = compute_duet_rewards(**{**q_step, "baseline_scores": None, "baseline_parent": None}, marginal_utility="off")
    per_prompt = compute_duet_rewards(**q_step, marginal_utility="per_prompt")
    shift = off.large_reward - per_prompt.large_reward
    for question in np.unique(step["large_question"]):
        in_question = shift[step["large_question"] == question]
        np.testing.assert_allclose(in_question, in_question[0], atol=1e-12)


# ---------------------------------------------------------------------------------------------- token level
@pytest.mark.parametrize(
    ("mask", "position"),
    [
        ([1, 1, 1, 0, 0], 2),
        ([1, 1, 1, 1, 1], 4),
        ([1, 0, 0, 0, 0], 0),
        ([0, 0, 0, 0, 0], 0),  # empty response: position 0 (inert under the mask)
        ([1, 1, 0, 1, 0], 3),  # the last valid token, even after a gap
    ],
)
def test_place_on_last_token(mask, position):
    rewards = place_on_last_token(torch.tensor([0.75]), torch.tensor([mask]))
    expected = torch.zeros(1, 5)
    expected[0, position] = 0.75
    assert torch.equal(rewards, expected) and rewards.dtype == torch.float32


def test_place_on_last_token_batch():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    rewards = place_on_last_token(torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64), mask)
    assert torch.equal(rewards, torch.tensor([[0, 1.0, 0], [0, 0, -0.5], [2.0, 0, 0]]))
    assert torch.equal(rewards.sum(-1), torch.tensor([1.0, -0.5, 2.0]))


@pytest.mark.parametrize(
    ("scores", "mask", "message"),
    [
        (torch.zeros(2), torch.ones(3, 4), r"need scores \[B\] and response_mask \[B, T\]"),
        (torch.zeros(2, 1), torch.ones(2, 4), r"need scores \[B\] and response_mask \[B, T\]"),
        (torch.zeros(2), torch.ones(2, 0), "no token positions"),
    ],
)
def test_place_on_last_token_rejects_bad_shapes(scores, mask, message):
    with pytest.raises(ValueError, match=message):
        place_on_last_token(scores, mask)


END = 7


def test_length_measures():
    responses = torch.tensor([[1, END, 2, 0], [1, 2, 3, 0], [END, END, 0, 0], [1, 2, 3, END], [5, 5, END, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]])  # last: END is padding
    np.testing.assert_array_equal(response_lengths(mask), [3, 3, 2, 4, 2])
    np.testing.assert_array_equal(thinking_lengths(responses, mask, END), [2, 3, 1, 4, 2])
    loop = [thinking_token_count(r[m.bool()].tolist(), END) for r, m in zip(responses, mask, strict=True)]
    np.testing.assert_array_equal(thinking_lengths(responses, mask, END), loop)
