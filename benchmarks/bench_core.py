"""Scoring and reward maths for one paper-scale DUET step (64 questions x 4 signals x 4 answers).

    python benchmarks/bench_core.py [--questions 64] [--n 4] [--k 4] [--threads 8] [--answers math500.jsonl]

Scores the step's 1024 guided + 1024 baseline m answers (realistic boxed-LaTeX answers built from MATH-500's
ground truths: right as written, right in another form, wrong, unboxed) with ``score_answer``, first from one
thread and then from ``--threads`` threads as verl's reward-loop worker does, each time with math-verify's
result cache emptied; then times the reward maths for M (``compute_duet_rewards`` + thinking lengths + the
token-level tensor). Target: reward maths < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from duet_verl.core import (
    compute_duet_rewards,
    place_on_last_token,
    response_lengths,
    score_answer,
    scoring,
    thinking_lengths,
)

MATH500_SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "datasets" / "math500.jsonl"
BUILT_IN = ["5", "\\frac{1}{2}", "\\sqrt{3}", "33", "x^2+1", "\\left( 3, \\frac{\\pi}{2} \\right)", "-1", "2\\pi",
            "[1,2)", "\\frac{14}{3}", "6+9i", "1,-2", "58,500", "\\text{(C)}", "p - q", "4.5"]  # fmt: skip
REASONING = (
    "To solve this, first rewrite the expression and collect like terms. Substituting the given values and "
    "simplifying step by step, we check each case carefully and verify the result satisfies the conditions. "
)


def ground_truths(count: int, rng: random.Random, answers_file: Path | None) -> list[str]:
    """Distinct answers of ``answers_file`` (all of MATH-500's test.jsonl: 500), or the built-in list and the
    repository's 13-row MATH-500 sample."""
    path = answers_file or MATH500_SAMPLE
    answers = [json.loads(line)["answer"] for line in path.read_text().splitlines() if line.strip()]
    if answers_file is None:
        answers = list(dict.fromkeys(BUILT_IN + answers))
    return rng.sample(answers, count) if count <= len(answers) else [rng.choice(answers) for _ in range(count)]


def other_form(truth: str) -> str:
    """The same answer written differently (what makes math-verify necessary)."""
    if truth.lstrip("-").isdigit():
        return f"\\frac{{{2 * int(truth)}}}{{2}}" if len(truth) < 10 else truth + ".0"
    fraction = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", truth)
    if fraction:
        return f"{fraction.group(1)}{fraction.group(2)}/{fraction.group(3)}"
    return truth.replace(",", ", ") + " "


def m_answer(truth: str, wrong: str, rng: random.Random) -> str:
    kind = rng.random()
    reasoning = REASONING * rng.randint(2, 6)
    if kind < 0.35:
        return f"{reasoning}Therefore the answer is $\\boxed{{{truth}}}$."
    if kind < 0.5:
        return f"{reasoning}So we get $\\boxed{{{other_form(truth)}}}$."
    if kind < 0.9:
        return f"{reasoning}Hence the answer is $\\boxed{{{wrong}}}$."
    return reasoning + "The answer is probably " + wrong  # unboxed / cut off


def make_step(questions: int, n: int, k: int, answers_file: Path | None, seed: int = 0):
    rng = random.Random(seed)
    truths = ground_truths(questions, rng, answers_file)
    guided, baseline = [], []
    for q, truth in enumerate(truths):
        for _ in range(n * k):
            guided.append((m_answer(truth, truths[(q + rng.randint(1, questions - 1)) % questions], rng), truth))
            baseline.append((m_answer(truth, truths[(q + rng.randint(1, questions - 1)) % questions], rng), truth))
    return guided, baseline


def score_all(pairs, threads: int):
    scoring._math_verify_equal.cache_clear()  # cold: no verdict is reused from an earlier run
    start = time.perf_counter()
    if threads == 1:
        results = [score_answer("HuggingFaceH4/MATH-500", response, truth) for response, truth in pairs]
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda pair: score_answer("HuggingFaceH4/MATH-500", *pair), pairs))
    return results, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--n", type=int, default=4, help="M responses per question")
    parser.add_argument("--k", type=int, default=4, help="m answers per signal")
    parser.add_argument("--threads", type=int, default=8, help="scoring threads in the second run")
    parser.add_argument("--response-length", type=int, default=8192, help="M's max response length (tokens)")
    parser.add_argument("--answers", type=Path, help="MATH-500 jsonl ground truths (default: a built-in sample)")
    args = parser.parse_args()
    num_large = args.questions * args.n
    with ThreadPoolExecutor(scoring._POOL.size) as pool:  # start all math-verify workers outside the timing
        list(pool.map(lambda i: score_answer("math500", f"\\boxed{{\\frac{{{i}}}{{2}}}}", "0.5"), range(8)))
    print(f"step: {args.questions} questions x {args.n} signals x {args.k} answers = {num_large * args.k} guided "
          f"+ as many baseline m answers; math-verify workers per process: {scoring._POOL.size}")  # fmt: skip
    for run, threads in enumerate((1, args.threads)):
        guided, baseline = make_step(args.questions, args.n, args.k, args.answers, seed=run)  # fresh for each run
        results, seconds = score_all(guided + baseline, threads)
        methods = Counter(r.method for r in results)
        accuracy = np.mean([r.score for r in results])
        worker_calls = scoring._math_verify_equal.cache_info().misses  # the rest were repeats of a verdict
        print(f"scoring, {threads} thread(s): {len(results) / seconds:,.0f} answers/s ({seconds:.2f} s for the step; "
              f"accuracy {accuracy:.2f}; decided by {dict(methods.most_common())}; "
              f"{worker_calls} math-verify calls reached a worker)")  # fmt: skip
    scores = np.array([r.score for r in results])

    rng = np.random.default_rng(0)
    valid = rng.integers(200, args.response_length, num_large)
    mask = (torch.arange(args.response_length)[None, :] < torch.as_tensor(valid)[:, None]).to(torch.int64)
    responses = torch.randint(0, 150_000, (num_large, args.response_length))
    responses[torch.arange(num_large), torch.as_tensor(valid) // 2] = 151_668  # "</think>" half-way
    parents = np.repeat(np.arange(num_large), args.k)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        lengths = response_lengths(mask)
        thinking = thinking_lengths(responses, mask, 151_668)
        rewards = compute_duet_rewards(
            scores[: len(guided)], parents, num_large, lengths, lam=0.3, length_bound=1000,
            marginal_utility="per_signal", baseline_scores=scores[len(guided) :], baseline_parent=parents,
        )  # fmt: skip
        token_level = place_on_last_token(torch.as_tensor(rewards.large_reward, dtype=torch.float32), mask)
        timings.append(time.perf_counter() - start)
    assert token_level.shape == (num_large, args.response_length) and thinking.shape == (num_large,)
    print(f"reward maths for M ({num_large} rows x {args.response_length} tokens: lengths, thinking lengths, "
          f"r_Mm/r_m/penalty/R_M, token-level tensor): median {np.median(timings) * 1e3:.1f} ms, "
          f"max {np.max(timings) * 1e3:.1f} ms (target < 50 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
