"""Absolute timings of the scorer's worst cases: adversarial huge answers and answers math-verify cannot finish.

    python benchmarks/bench_scoring_limits.py [--repeats 5]

The unit tests (tests/core/test_scoring.py) only bound complexity and catch hangs, because CI is a loaded
2-core machine; the absolute numbers live here. For each huge input of the tests: wall seconds to score it as
math and as GPQA (median and max over the repeats, collector on, as in a real run; target < 0.5 s) and the
cost of 10x the input in CPU time (linear: about 10x; quadratic: about 100x). Then the two timeout paths: the
child's own soft deadline (``SOFT_TIMEOUT_FRACTION`` of ``timeout_s``, the child stays alive) and the parent's
hard deadline (the child is killed and a successor started); target: back within ``timeout_s`` + 0.5 s.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from duet_verl.core import score_answer, scoring

DEFAULT_SOFT_FRACTION = scoring.SOFT_TIMEOUT_FRACTION

HUGE_INPUTS = {
    "huge answer": (lambda n: "\\boxed{" + "1+" * n + "1}", 300_000),
    "unclosed, deeply nested": (lambda n: "\\boxed{" + "{" * n, 200_000),
    "many false starts": (lambda n: "\\boxed." * n + "\\boxed{5}", 100_000),
    "GPQA regex bait (spaces)": (lambda n: "Answer" + " " * n + "x", 200_000),
    "GPQA regex bait (asterisks)": (lambda n: "Answer:" + "*" * n, 200_000),
}


def score_both(response: str) -> None:
    score_answer("math500", response, "5", timeout_s=1.0)
    score_answer("gpqa", response, "A", timeout_s=1.0)


def wall_seconds(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def least_cpu_seconds(call, repeats: int) -> float:
    gc.collect()
    gc.disable()
    try:
        return min(_thread_seconds(call) for _ in range(repeats))
    finally:
        gc.enable()


def _thread_seconds(call) -> float:
    start = time.thread_time()
    call()
    return time.thread_time() - start


def ready_worker() -> None:
    """A call that reaches a worker (the cache emptied first), so that no worker's start-up is timed."""
    scoring._math_verify_equal.cache_clear()
    assert score_answer("math500", "\\boxed{\\frac{2}{4}}", "0.5").method == "math_verify"


def timed_timeout(answer: str, timeout_s: float, soft_fraction: float) -> tuple[float, str, bool]:
    """Seconds until ``score_answer`` returns, its method, and whether the child had to be killed."""
    ready_worker()
    before = {worker.process.pid for worker in scoring._POOL._idle}
    scoring.SOFT_TIMEOUT_FRACTION = soft_fraction
    try:
        start = time.perf_counter()
        result = score_answer("math500", f"\\boxed{{{answer}}}", "5", timeout_s=timeout_s)
        seconds = time.perf_counter() - start
    finally:
        scoring.SOFT_TIMEOUT_FRACTION = DEFAULT_SOFT_FRACTION
    return seconds, result.method, before != {worker.process.pid for worker in scoring._POOL._idle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print("huge inputs, scored as math and as GPQA (target < 0.5 s):")
    for name, (make, size) in HUGE_INPUTS.items():
        large, small = make(size), make(size // 10)
        times = wall_seconds(lambda r=large: score_both(r), args.repeats)
        ratio = least_cpu_seconds(lambda r=large: score_both(r), 3) / least_cpu_seconds(
            lambda r=small: score_both(r), 5
        )
        print(f"  {name:28s} {len(large):>9,} chars: median {statistics.median(times) * 1e3:7.1f} ms, "
              f"max {max(times) * 1e3:7.1f} ms; 10x the input costs {ratio:.1f}x CPU")  # fmt: skip

    print("answers math-verify cannot finish (target: back within timeout_s + 0.5 s):")
    for label, answer, timeout_s, fraction in (
        ("soft deadline (child answers)", "9^{9^{9^{9}}}", 1.0, DEFAULT_SOFT_FRACTION),
        ("hard deadline (child killed) ", "7^{7^{7^{7}}}", 0.5, 1000.0),
    ):
        runs = [timed_timeout(answer, timeout_s, fraction) for _ in range(args.repeats)]
        seconds, methods, killed = zip(*runs, strict=True)
        print(f"  {label} timeout_s={timeout_s}: median {statistics.median(seconds):.3f} s, "
              f"max {max(seconds):.3f} s; methods {sorted(set(methods))}, "
              f"child killed {sum(killed)}/{len(runs)}")  # fmt: skip


if __name__ == "__main__":
    main()
