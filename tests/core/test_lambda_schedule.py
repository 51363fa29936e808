import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duet_verl.core import LambdaSchedule


@pytest.mark.parametrize(
    ("schedule", "init", "mean_lengths", "expected"),
    [
        ("constant", 1.0, [5000, 0], [1.0, 1.0, 1.0]),
        ("constant", 3.0, [5000], [3.0, 3.0]),  # constant λ is not clipped (B/λ ablations)
        ("adaptive", 0.0, [2000, 2000], [0.0, 0.01, 0.02]),  # η (L/B − 1) = 0.01 · (2 − 1)
        ("adaptive", 0.0, [0, 0], [0.0, 0.0, 0.0]),  # clipped at 0
        ("adaptive", 0.995, [3000, 3000], [0.995, 1.0, 1.0]),  # clipped at 1
        ("adaptive", 0.5, [500, 1000], [0.5, 0.495, 0.495]),  # shorter than B: λ shrinks; at B: unchanged
        ("adaptive", 0.5, [1000 * 51], [0.5, 1.0]),
    ],
)
def test_schedules(schedule, init, mean_lengths, expected):
    lam = LambdaSchedule(schedule, init, eta=0.01, length_bound=1000)
    values = [lam.value]
    for mean_length in mean_lengths:
        returned = lam.update(mean_length)
        assert returned == lam.value
        values.append(lam.value)
    np.testing.assert_allclose(values, expected)


def test_custom_clip_range():
    lam = LambdaSchedule("adaptive", 0.2, eta=1.0, length_bound=100, clip_min=0.1, clip_max=0.3)
    assert [lam.update(1000), lam.update(0), lam.update(0)] == [0.3, 0.1, 0.1]


def test_resumed_run_continues_with_the_same_lambda():
    trained = LambdaSchedule("adaptive", 0.2, eta=0.05, length_bound=1000)
    for mean_length in (4000, 2500):
        trained.update(mean_length)
    resumed = LambdaSchedule("adaptive", 0.2, eta=0.05, length_bound=1000)
    assert resumed.value != trained.value
    resumed.load_state_dict(trained.state_dict())
    assert (resumed.value, resumed.num_updates) == (trained.value, 2)
    assert resumed.update(3000) == trained.update(3000)


def test_state_dict_is_plain_data():
    state = LambdaSchedule("adaptive", 0.25).state_dict()
    assert state == {"schedule": "adaptive", "value": 0.25, "num_updates": 0}


@pytest.mark.parametrize(
    ("run", "state", "message"),
    [
        (
            LambdaSchedule("constant", 0.0),
            {"schedule": "adaptive", "value": 0.3},
            "'adaptive' λ schedule, this run 'constant'",
        ),
        (LambdaSchedule("constant", 1.0), {"schedule": "constant", "value": 0.5}, "constant λ=0.5 but lambda_init=1.0"),
        (LambdaSchedule("adaptive", 0.0), {"schedule": "adaptive", "value": float("nan")}, "value must be finite"),
    ],
)
def test_load_state_dict_mismatch(run, state, message):
    with pytest.raises(ValueError, match=message):
        run.load_state_dict(state)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"schedule": "cosine"}, "schedule='cosine'; valid: \\['constant', 'adaptive'\\]"),
        ({"length_bound": 0}, "length_bound must be > 0"),
        ({"length_bound": float("inf")}, "length_bound must be finite"),
        ({"eta": -0.01}, "eta must be >= 0"),
        ({"eta": "fast"}, "eta must be a number"),
        ({"clip_min": 0.8, "clip_max": 0.2}, "clip_min=0.8 / clip_max=0.2"),
        ({"clip_min": -0.1}, "clip_min=-0.1"),
        ({"lambda_init": -1.0}, "lambda_init must be >= 0"),
        ({"lambda_init": 1.5}, r"lambda_init=1.5 lies outside \[clip_min, clip_max\]"),
        ({"lambda_init": None}, "lambda_init must be a number"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LambdaSchedule(**{"schedule": "adaptive", "lambda_init": 0.0, **kwargs})


@pytest.mark.parametrize("mean_length", [-1.0, float("nan"), float("inf")])
def test_bad_mean_length(mean_length):
    with pytest.raises(ValueError, match="mean_length"):
        LambdaSchedule("adaptive", 0.0).update(mean_length)


@settings(max_examples=200, deadline=None)
@given(
    init=st.floats(0, 1),
    means=st.lists(st.floats(0, 1e7), max_size=30),
    eta=st.floats(0, 10),
    bound=st.floats(1, 1e5),
)
def test_adaptive_lambda_stays_in_the_unit_interval(init, means, eta, bound):
    lam = LambdaSchedule("adaptive", init, eta=eta, length_bound=bound)
    for mean_length in means:
        assert 0.0 <= lam.update(mean_length) <= 1.0


@settings(max_examples=200, deadline=None)
@given(init=st.floats(0, 1), short=st.floats(0, 1e5), extra=st.floats(0, 1e5))
def test_adaptive_lambda_grows_with_length(init, short, extra):
    """A longer batch never gives a smaller next λ; above the bound λ never falls, below it never rises."""
    a, b = LambdaSchedule("adaptive", init), LambdaSchedule("adaptive", init)
    next_short, next_long = a.update(short), b.update(short + extra)
    assert next_short <= next_long
    assert (next_short >= init) if short >= 1000 else (next_short <= init)


def test_from_config_reads_the_duet_keys():
    from types import SimpleNamespace

    duet = SimpleNamespace(lambda_schedule="adaptive", lambda_init=0.2, lambda_eta=0.5, length_bound=100.0,
                           lambda_clip_min=0.1, lambda_clip_max=0.3)  # fmt: skip
    lam = LambdaSchedule.from_config(duet)
    assert (lam.schedule, lam.value, lam.eta, lam.length_bound, lam.clip_min, lam.clip_max) == (
        "adaptive", 0.2, 0.5, 100.0, 0.1, 0.3,
    )  # fmt: skip
