"""What the end-to-end tests read of a run's console (``duet_verl.testing.run_log``)."""

from duet_verl.testing.run_log import engine_events, later_step_times, one_engine_awake_at_a_time


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
