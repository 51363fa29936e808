"""Summary numbers from per-sample records (pure Python: no torch, no models).

A record is one JSONL line of the runner (``records.jsonl``); the fields used here are ``benchmark``, ``mode``,
``seed``, ``correct``, ``large_model``, ``large_tokens``, ``large_thinking_tokens``, ``small_tokens``, ``signal``,
``large_seconds`` and ``small_seconds``. Accuracy's 95% interval is Wilson's over all samples of a (benchmark,
mode); with several seeds the per-seed spread (population std) is reported beside it. "Intelligence per 1000
tokens" is accuracy ÷ (mean M output tokens / 1000), the reading that fits the paper's appendix values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

MODES = ("duet", "large", "small", "concise")
Z_95 = 1.959963984540054


def wilson_interval(successes: float, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval: unlike the normal approximation it stays inside [0, 1] at 0% or 100%."""
    if total <= 0:
        return (0.0, 0.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _per_seed(records: list[dict], field: str) -> list[float]:
    by_seed: dict[int, list[float]] = defaultdict(list)
    for record in records:
        by_seed[record["seed"]].append(float(record[field] or 0))
    return [_mean(values) for _, values in sorted(by_seed.items())]


def _empty_signals(records: list[dict]) -> dict:
    """Where m read M's signal (duet): the share of answers whose signal was empty and m's accuracy on those (None
    when there were none); None for modes without a signal. A rising share is M's length penalty collapsing into
    guessing (docs/training.md, "Metrics")."""
    read = [r for r in records if r.get("signal") is not None]
    if not read:
        return {"signal_empty_fraction": None, "accuracy_empty_signal": None}
    empty = [float(r["correct"]) for r in read if not r["signal"]]
    return {"signal_empty_fraction": len(empty) / len(read), "accuracy_empty_signal": _mean(empty) if empty else None}


def summarize_group(records: list[dict]) -> dict:
    """Accuracy, token and time means for the records of one (benchmark, mode)."""
    total = len(records)
    correct = sum(float(r["correct"]) for r in records)
    accuracy = correct / total if total else 0.0
    low, high = wilson_interval(correct, total)
    large_tokens = _mean([float(r["large_tokens"] or 0) for r in records])
    summary = {
        "samples": total,
        "questions": len({r["row"] for r in records}),
        "seeds": len({r["seed"] for r in records}),
        "accuracy": accuracy,
        "accuracy_ci95": [low, high],
        "accuracy_seed_std": _std(_per_seed(records, "correct")),
        "mean_large_tokens": large_tokens,
        "mean_large_tokens_seed_std": _std(_per_seed(records, "large_tokens")),
        "mean_large_thinking_tokens": _mean([float(r["large_thinking_tokens"] or 0) for r in records]),
        "mean_small_tokens": _mean([float(r["small_tokens"] or 0) for r in records]),
        "mean_small_tokens_seed_std": _std(_per_seed(records, "small_tokens")),
        "large_seconds": sum(float(r["large_seconds"] or 0) for r in records),
        "small_seconds": sum(float(r["small_seconds"] or 0) for r in records),
        # M generated nothing (m alone): accuracy per M token is undefined, not infinite
        "intelligence_per_1k_tokens": accuracy / (large_tokens / 1000) if large_tokens > 0 else None,
        "token_saving_vs_large": None,
        "large_models": sorted({r["large_model"] for r in records if r.get("large_model")}),  # which M wrote
        **_empty_signals(records),
    }
    summary["total_seconds"] = summary["large_seconds"] + summary["small_seconds"]
    return summary


def summarize(records: Iterable[dict]) -> dict[str, dict[str, dict]]:
    """``{benchmark: {mode: summary}}``; modes in ``MODES`` order; saving = 1 − M tokens / M tokens of ``large``."""
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        groups[record["benchmark"]][record["mode"]].append(record)
    result: dict[str, dict[str, dict]] = {}
    for benchmark, by_mode in groups.items():
        order = sorted(by_mode, key=lambda m: MODES.index(m) if m in MODES else len(MODES))
        result[benchmark] = {mode: summarize_group(by_mode[mode]) for mode in order}
        large = result[benchmark].get("large")
        if large and large["mean_large_tokens"] > 0:
            for summary in result[benchmark].values():
                summary["token_saving_vs_large"] = 1 - summary["mean_large_tokens"] / large["mean_large_tokens"]
    return result
