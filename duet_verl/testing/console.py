"""Read verl's console logger output back into numbers (tests and benchmarks run verl in subprocesses)."""

from __future__ import annotations

import re

STEP_LINE = re.compile(r"step:(\d+) - (.*)$")
NUMBER = re.compile(r"^(?:np\.\w+\()?([-+0-9.eEinfa]+)\)?$")


def parse_step_metrics(output: str) -> dict[int, dict[str, float]]:
    """``{step: {metric: value}}`` from the ``step:N - key:value - ...`` lines verl prints every step."""
    metrics: dict[int, dict[str, float]] = {}
    for line in output.splitlines():
        match = STEP_LINE.search(line)
        if not match:
            continue
        values = {}
        for item in match.group(2).split(" - "):
            key, _, raw = item.rpartition(":")
            number = NUMBER.match(raw.strip())
            if key and number:
                values[key] = float(number.group(1))
        metrics[int(match.group(1))] = values
    return metrics


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
