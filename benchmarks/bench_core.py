"""Scoring and reward maths at paper scale: 64 questions x 4 signals x 4 answers (+ as many baseline answers).

    python benchmarks/bench_core.py [--questions 64]

Prints answers/second for scoring (one process, as one verl reward-loop worker scores) and milliseconds for
the reward maths (target < 50 ms).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from duet_verl.core import compute_duet_rewards, place_on_last_token, score_answer

ANSWERS = ["5", "\\frac{1}{2}", "\\sqrt{3}", "33", "x^2+1", "\\left( 3, \\frac{\\pi}{2} \\right)", "-1", "27", "2\\pi"]
WRONG = ["6", "\\frac{2}{3}", "\\sqrt{2}", "34", "x^2-1", "(3, \\pi)", "1", "28", "\\pi"]


def make_answers(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(response, ground truth) pairs: ~1/3 correct as written, ~1/3 equivalent-but-different, ~1/3 wrong."""
    pairs = []
    for _ in range(count):
        i = rng.randrange(len(ANSWERS))
        kind = rng.random()
        if kind < 1 / 3:
            predicted = ANSWERS[i]
        elif kind < 2 / 3:
            predicted = {"5": "5.0", "\\frac{1}{2}": "0.5", "33": "033", "x^2+1": "1+x^2"}.get(ANSWERS[i], WRONG[i])
        else:
            predicted = WRONG[i]
        pairs.append((f"Some reasoning about the problem... so the answer is \\boxed{{{predicted}}}.", ANSWERS[i]))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(0)
    num_large = args.questions * args.n
    guided = make_answers(num_large * args.k, rng)
    baseline = make_answers(num_large * args.k, rng)

    score_answer("math500", "\\boxed{1}", "2")  # start math-verify's worker process outside the timing
    start = time.perf_counter()
    guided_scores = np.array([score_answer("math500", r, t).score for r, t in guided])
    baseline_scores = np.array([score_answer("math500", r, t).score for r, t in baseline])
    scoring_s = time.perf_counter() - start
    total = len(guided) + len(baseline)

    lengths = np.random.default_rng(0).integers(100, 8192, num_large)
    mask = torch.ones(num_large, 8192)
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        rewards = compute_duet_rewards(
            guided_scores, np.repeat(np.arange(num_large), args.k), num_large, lengths, lam=0.3, length_bound=1000,
            marginal_utility="per_signal", baseline_scores=baseline_scores,
            baseline_parent=np.repeat(np.arange(num_large), args.k),
        )  # fmt: skip
        place_on_last_token(torch.as_tensor(rewards.R_M), mask)
        timings.append(time.perf_counter() - start)

    print(f"answers scored: {total} ({len(guided)} guided + {len(baseline)} baseline)")
    print(f"scoring: {total / scoring_s:.0f} answers/s in one process ({scoring_s:.2f} s for the step)")
    print(f"reward maths (rewards + token-level tensor [{num_large} x 8192]): median {np.median(timings) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
