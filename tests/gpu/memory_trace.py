"""Did GPU memory come back each time a rollout engine went to sleep? Reads what smoke_duet_vllm.sh recorded.

    python tests/gpu/memory_trace.py --samples gpu_memory.csv --log train.log

``--samples``: ``nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits`` lines (MiB), one
per sample. ``--log``: the trainer's output, which prints ``[duet] rollout engine asleep: <model>`` after each
sleep. A sleeping engine (level 2) gives back its weights and KV cache, about its ``gpu_memory_utilization`` share
of the GPU; the check asks for at least as many drops of ``--min-drop`` of the GPU as logged sleeps. Exit 1 if not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ASLEEP = "[duet] rollout engine asleep:"


def read_samples(text: str) -> tuple[list[int], int]:
    """(memory.used per sample, memory.total) in MiB; lines that are not two numbers are skipped."""
    used, total = [], 0
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 2 and all(field.isdigit() for field in fields):
            used.append(int(fields[0]))
            total = int(fields[1])
    return used, total


def drops(used: list[int], min_drop: int) -> list[int]:
    """Size of each fall of at least ``min_drop`` from a peak, counted once until memory rises ``min_drop`` again.

    The hysteresis makes one sleep one drop however the samples fall on its way down, and noise below ``min_drop``
    (allocator caches, CUDA graphs) none.
    """
    found: list[int] = []
    peak = trough = used[0] if used else 0
    falling = False
    for value in used:
        if falling:
            if value < trough:
                trough = value
                found[-1] = peak - trough
            elif value - trough >= min_drop:
                falling, peak = False, value
        elif value > peak:
            peak = value
        elif peak - value >= min_drop:
            falling, trough = True, value
            found.append(peak - trough)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--min-drop", type=float, default=0.25, help="fraction of the GPU a sleep must free")
    args = parser.parse_args(argv)
    used, total = read_samples(args.samples.read_text())
    sleeps = sum(ASLEEP in line for line in args.log.read_text(errors="replace").splitlines())
    if not used or not sleeps:
        print(f"[memory] FAIL: {len(used)} memory samples, {sleeps} logged engine sleeps", flush=True)
        return 1
    min_drop = int(args.min_drop * total)
    found = drops(used, min_drop)
    ok = len(found) >= sleeps
    print(
        f"[memory] {'ok' if ok else 'FAIL'}: {len(found)} drops of >= {min_drop} MiB (sizes {found} MiB) for "
        f"{sleeps} logged engine sleeps; peak {max(used)} of {total} MiB over {len(used)} samples",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
