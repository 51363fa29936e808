import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from duet_verl.core import compute_duet_rewards, place_on_last_token


def test_table_example_per_signal():
    # 2 M rows, k=2 guided and k=2 baseline answers each, B=10, λ=0.5
    rewards = compute_duet_rewards(
        small_scores=[1, 0, 1, 1],
        small_parent=[0, 0, 1, 1],
        num_large=2,
        large_lengths=[4, 10],
        lam=0.5,
        length_bound=10,
        marginal_utility="per_signal",
        baseline_scores=[0, 0, 1, 0],
        baseline_parent=[0, 0, 1, 1],
    )
    np.testing.assert_allclose(rewards.r_Mm, [0.5, 1.0])
    np.testing.assert_allclose(rewards.r_m, [0.0, 0.5])
    np.testing.assert_allclose(rewards.length_penalty, [0.2, 0.5])
    np.testing.assert_allclose(rewards.R_M, [0.3, 0.0])


def test_off_drops_r_m_and_ids_not_positions_link_rows():
    rewards = compute_duet_rewards([1, 0, 0, 1], [1, 0, 0, 1], 2, [0, 0], lam=1.0, length_bound=1)
    np.testing.assert_allclose(rewards.r_Mm, [0.0, 1.0])
    assert rewards.r_m is None
    np.testing.assert_allclose(rewards.R_M, [0.0, 1.0])


def test_per_prompt_uses_question_level_baseline():
    rewards = compute_duet_rewards(
        [1, 1, 0, 0], [0, 1, 2, 3], 4, [0] * 4, lam=0.0, length_bound=1, marginal_utility="per_prompt",
        baseline_scores=[1, 0, 0, 0], baseline_parent=[0, 0, 1, 1], large_question=[0, 0, 1, 1],
    )  # fmt: skip
    np.testing.assert_allclose(rewards.r_m, [0.5, 0.5, 0.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"small_parent": [0, 0, 0, 0]}, "no answers for rows"),
        ({"small_parent": [0, 1, 2]}, "parent ids"),
        ({"marginal_utility": "sometimes"}, "sometimes"),
        ({"marginal_utility": "per_signal"}, "needs baseline"),
        ({"length_bound": 0}, "length_bound"),
        ({"large_lengths": [1, 2, 3]}, "large_lengths"),
    ],
)
def test_invalid_inputs(kwargs, message):
    args = {"small_scores": [1, 0, 1, 0], "small_parent": [0, 0, 1, 1], "num_large": 2, "large_lengths": [1, 2],
            "lam": 0.1, "length_bound": 10}  # fmt: skip
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        compute_duet_rewards(**args)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 5),
    lam=st.floats(0, 1),
    bound=st.floats(1, 2000),
    data=st.data(),
)
def test_formula_and_penalty_monotone_in_length(n, k, lam, bound, data):
    scores = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n * k, max_size=n * k)))
    lengths = np.array(data.draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n)), dtype=float)
    parent = np.repeat(np.arange(n), k)
    rewards = compute_duet_rewards(scores, parent, n, lengths, lam, bound)
    np.testing.assert_allclose(rewards.R_M, scores.reshape(n, k).mean(1) - lam * lengths / bound, atol=1e-9)
    longer = compute_duet_rewards(scores, parent, n, lengths + 1, lam, bound)
    assert (longer.length_penalty >= rewards.length_penalty).all()
    assert (longer.R_M <= rewards.R_M + 1e-12).all()


@pytest.mark.parametrize(
    ("mask", "expected_col"),
    [([[1, 1, 1, 0]], 2), ([[1, 1, 1, 1]], 3), ([[1, 0, 0, 0]], 0), ([[0, 0, 0, 0]], 0)],
)
def test_place_on_last_token(mask, expected_col):
    mask = torch.tensor(mask)
    out = place_on_last_token(torch.tensor([0.7]), mask)
    assert out[0, expected_col] == pytest.approx(0.7)
    assert out.sum() == pytest.approx(0.7)
