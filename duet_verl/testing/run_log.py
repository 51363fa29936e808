"""What the end-to-end tests read of a run besides its metrics (those come from verl's JSONL file logger,
``duet_verl.experiments.runs.read_metrics``): the DUET trainer's own engine lines, and step times."""

from __future__ import annotations


def engine_events(output: str) -> list[str]:
    """The DUET trainer's rollout engine wake/sleep lines in order, as ``"awake: large"`` / ``"asleep: large"``."""
    marker = "[duet] rollout engine "
    return [line.split(marker, 1)[1].strip() for line in output.splitlines() if marker in line]


def one_engine_awake_at_a_time(events: list[str]) -> bool:
    """Whether every wake-up is followed by that engine's sleep before any other engine wakes."""
    awake = None
    for event in events:
        state, name = event.split(": ")
        if state == "awake" and awake is None:
            awake = name
        elif state == "asleep" and awake == name:
            awake = None
        else:
            return False
    return True


GENERATION_TIMERS = ("timing_s/gen_large", "timing_s/gen_small", "timing_s/gen_baseline")


def later_step_times(metrics: dict[int, dict[str, float]]) -> tuple[float, float]:
    """Mean seconds per DUET step and of its three generations, over the steps after the first (warm-up)."""
    later = [metrics[step] for step in sorted(metrics)[1:]]
    step = sum(m["timing_s/step"] for m in later) / len(later)
    generation = sum(sum(m[key] for key in GENERATION_TIMERS) for m in later) / len(later)
    return step, generation
