"""The smoke run's GPU-memory check (tests/gpu/memory_trace.py) on synthetic traces; runs on CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("memory_trace", Path(__file__).with_name("memory_trace.py"))
memory_trace = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(memory_trace)

TOTAL = 81_559  # an H100's memory.total in MiB
ASLEEP_M, ASLEEP_m = "[duet] rollout engine asleep: large", "[duet] rollout engine asleep: small"


def trace(*levels: int, repeat: int = 3) -> list[int]:
    """Each level held for ``repeat`` samples."""
    return [level for level in levels for _ in range(repeat)]


# startup, M created (0.55) and put to sleep, m created (0.5) and put to sleep, then one step: M, m, training
SLEEPING = trace(500, 3_000, 47_000, 46_000, 6_000, 44_000, 7_000, 47_500, 8_000, 45_000, 9_000, 12_000)


def test_each_sleep_is_one_drop_however_it_is_sampled():
    # a sleep sampled on its way down (47 → 30 → 6 GB) is one drop, of its full size
    assert memory_trace.drops([1_000, 47_000, 30_000, 6_000, 6_500, 44_000], 20_000) == [41_000]
    assert memory_trace.drops(SLEEPING, 20_000) == [41_000, 37_000, 39_500, 36_000]


def test_noise_below_the_threshold_is_no_drop():
    assert memory_trace.drops(trace(20_000, 45_000, 38_000, 46_000, 30_000, 44_000), 20_000) == []
    assert memory_trace.drops([], 20_000) == []


def test_read_samples_skips_what_is_not_two_numbers():
    text = "1024, 81559\n\nNo devices were found\n 47000 , 81559 \n[N/A], 81559\n"
    assert memory_trace.read_samples(text) == ([1024, 47000], 81559)


def run(tmp_path: Path, used: list[int], log: list[str]) -> int:
    (tmp_path / "samples.csv").write_text("".join(f"{u}, {TOTAL}\n" for u in used))
    (tmp_path / "train.log").write_text("\n".join(["step:1 - x:1", *log]) + "\n")
    return memory_trace.main(["--samples", str(tmp_path / "samples.csv"), "--log", str(tmp_path / "train.log")])


def test_passes_when_every_logged_sleep_freed_memory(tmp_path, capsys):
    assert run(tmp_path, SLEEPING, [ASLEEP_M, ASLEEP_m]) == 0
    assert "[memory] ok: 4 drops" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("used", "log"),
    [
        # both engines stay resident (sleep freed nothing): memory only climbs
        (trace(500, 3_000, 45_000, 45_500, 46_000, 47_000), [ASLEEP_M, ASLEEP_m]),
        # fewer drops than the trainer logged sleeps
        (trace(500, 45_000, 6_000, 44_000, 43_000), [ASLEEP_M, ASLEEP_m, ASLEEP_M, ASLEEP_m]),
        # the sampler recorded nothing / the trainer never slept an engine
        ([], [ASLEEP_M]),
        (SLEEPING, []),
    ],
    ids=["never-freed", "too-few-drops", "no-samples", "no-sleeps"],
)
def test_fails_without_a_drop_per_sleep(tmp_path, capsys, used, log):
    assert run(tmp_path, used, log) == 1
    assert "[memory] FAIL" in capsys.readouterr().out
