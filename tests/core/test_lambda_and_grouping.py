import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

from duet_verl.core import LambdaSchedule, compute_duet_rewards, place_on_last_token, small_group_ids


@pytest.mark.parametrize(
    ("schedule", "init", "lengths", "expected"),
    [
        ("constant", 1.0, [5000, 0], [1.0, 1.0, 1.0]),
        ("adaptive", 0.0, [2000, 2000], [0.0, 0.01, 0.02]),
        ("adaptive", 0.0, [0, 0], [0.0, 0.0, 0.0]),  # clipped at 0
        ("adaptive", 0.995, [3000, 3000], [0.995, 1.0, 1.0]),  # clipped at 1
        ("adaptive", 0.5, [500, 1000], [0.5, 0.495, 0.495]),
    ],
)
def test_lambda_schedule(schedule, init, lengths, expected):
    lam = LambdaSchedule(schedule, init, eta=0.01, length_bound=1000)
    values = [lam.value]
    for mean_length in lengths:
        lam.update(mean_length)
        values.append(lam.value)
    np.testing.assert_allclose(values, expected)


def test_lambda_state_round_trip_and_mismatch():
    lam = LambdaSchedule("adaptive", 0.2)
    lam.update(5000)
    resumed = LambdaSchedule("adaptive", 0.0)
    resumed.load_state_dict(lam.state_dict())
    assert resumed.value == lam.value
    with pytest.raises(ValueError, match="constant"):
        LambdaSchedule("constant", 0.0).load_state_dict(lam.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"schedule": "cosine"}, "cosine"), ({"length_bound": 0}, "length_bound"), ({"clip_min": 2.0}, "lambda_clip")],
)
def test_lambda_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LambdaSchedule(**{"schedule": "adaptive", "lambda_init": 0.0, **kwargs})


@given(init=st.floats(-5, 5), means=st.lists(st.floats(0, 1e6), max_size=20), eta=st.floats(0, 1))
def test_adaptive_lambda_stays_in_unit_interval(init, means, eta):
    lam = LambdaSchedule("adaptive", init, eta=eta, length_bound=1000)
    for mean_length in means:
        assert 0.0 <= lam.update(mean_length) <= 1.0


@pytest.mark.parametrize(
    ("grouping", "expected"), [("question", ["q1", "q1", "q2"]), ("signal", ["q1/0", "q1/1", "q2/2"])]
)
def test_small_group_ids(grouping, expected):
    assert small_group_ids(["q1", "q1", "q2"], [0, 1, 2], grouping) == expected


def test_unknown_grouping():
    with pytest.raises(ValueError, match="prompt"):
        small_group_ids(["q"], [0], "prompt")


def _grpo_advantages(rewards: np.ndarray, uids: list[str]) -> torch.Tensor:
    mask = torch.ones(len(rewards), 3)
    scores = place_on_last_token(torch.tensor(rewards, dtype=torch.float32), mask)
    advantages, _ = compute_grpo_outcome_advantage(scores, mask, np.array(uids, dtype=object), epsilon=1e-6)
    return advantages


def test_per_prompt_marginal_utility_gives_the_same_grpo_advantages_as_off():
    """A per-question r_m is a constant inside each GRPO group of M, so it cancels (DUET.md)."""
    rng = np.random.default_rng(0)
    questions, n, k = 3, 4, 4
    num_large = questions * n
    uids = [f"q{i // n}" for i in range(num_large)]
    common = {
        "small_scores": rng.integers(0, 2, num_large * k).astype(float),
        "small_parent": np.repeat(np.arange(num_large), k),
        "num_large": num_large,
        "large_lengths": rng.integers(10, 3000, num_large),
        "lam": 0.3,
        "length_bound": 1000,
    }
    off = compute_duet_rewards(**common, marginal_utility="off")
    per_prompt = compute_duet_rewards(
        **common, marginal_utility="per_prompt", baseline_scores=rng.integers(0, 2, questions * k).astype(float),
        baseline_parent=np.repeat(np.arange(questions), k), large_question=np.repeat(np.arange(questions), n),
    )  # fmt: skip
    assert not np.allclose(off.R_M, per_prompt.R_M), "the baseline must actually shift the rewards"
    torch.testing.assert_close(_grpo_advantages(off.R_M, uids), _grpo_advantages(per_prompt.R_M, uids))
