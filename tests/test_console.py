"""Reading verl's console output back (``duet_verl.testing.console``), which the end-to-end tests rely on."""

from duet_verl.testing.console import engine_events, later_step_times, one_engine_awake_at_a_time, parse_step_metrics


def test_step_metrics_parse_plain_numpy_and_ray_prefixed_lines():
    output = (
        "\x1b[36m(DuetTaskRunner pid=1)\x1b[0m step:2 - duet/lambda:0.5 - small/actor/pg_loss:np.float64(-0.25) - "
        "large/num_turns/max:np.int32(2) - name:text\nunrelated line\nstep:3 - timing_s/step:1e-3"
    )
    assert parse_step_metrics(output) == {
        2: {"duet/lambda": 0.5, "small/actor/pg_loss": -0.25, "large/num_turns/max": 2.0},
        3: {"timing_s/step": 0.001},
    }


def test_engine_events_and_their_order():
    output = "\n".join(
        f"(DuetTaskRunner pid=1) [duet] rollout engine {event}"
        for event in ("awake: large", "asleep: large", "awake: small", "asleep: small")
    )
    events = engine_events(output + "\nother")
    assert events == ["awake: large", "asleep: large", "awake: small", "asleep: small"]
    assert one_engine_awake_at_a_time(events)
    assert not one_engine_awake_at_a_time(["awake: large", "awake: small"])  # two awake
    assert not one_engine_awake_at_a_time(["awake: large", "asleep: small"])  # the wrong one put to sleep
    assert not one_engine_awake_at_a_time(["asleep: large"])  # asleep before awake


def test_later_step_times_skip_the_warm_up_step():
    def step(total: float, generation: float) -> dict[str, float]:
        return {"timing_s/step": total, "timing_s/gen_large": generation, "timing_s/gen_small": 0.5,
                "timing_s/gen_baseline": 0.5}  # fmt: skip

    assert later_step_times({1: step(20.0, 9.0), 2: step(3.0, 1.0), 3: step(5.0, 2.0)}) == (4.0, 2.5)
