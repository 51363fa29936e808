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
