"""DUET against the single-model concise frontier: the systems' held-out rows, their params-weighted cost, the
issue's target and the pictures (``benchmarks/labour_world.py`` runs the systems; this module only reads numbers).

Cost: m's tokens are not free. A question's params-weighted cost is Σ tokens × parameters over the two models,
reported in *M-token equivalents* (divided by M's parameter count), so M alone's cost is its M tokens. It is given
at this world's size ratio (the two tiny models' real parameter counts) and at the paper's 8B : 0.6B.
"""

from __future__ import annotations

import math
from pathlib import Path

PAPER_RATIO = 0.6 / 8  # m's parameters per M parameter: Qwen3-0.6B beside Qwen3-8B
MATCH_POINTS = 0.02  # "the same accuracy": within 2 points of warm-started M alone
SINGLE_MODEL = ("warm_large", "grpo")  # M-alone systems besides the penalised ones (``penalty_<λ>``)


def parameter_count(model_dir: str | Path) -> int:
    """Parameters in a HF folder's safetensors files, read from their headers (no weights are loaded)."""
    from safetensors import safe_open

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {model_dir}: parameter_count reads a saved HF model folder")
    total = 0
    for file in files:
        with safe_open(str(file), "pt") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open has no __iter__)
                total += math.prod(weights.get_slice(name).get_shape())
    return total


def cost(large_tokens: float, small_tokens: float, small_per_large: float) -> float:
    """Params-weighted tokens per question in M-token equivalents: M's tokens plus m's scaled by its size."""
    return large_tokens + small_tokens * small_per_large


def is_single_model(system: str) -> bool:
    return system in SINGLE_MODEL or system.startswith("penalty_")


def target(rows: dict[str, dict]) -> dict:
    """The issue's target on one seed's rows (``{system: row}``; a row has ``accuracy``, ``large_tokens`` and the
    two ``cost_*`` columns). Same accuracy = within 2 points of warm M alone. DUET must keep it, use ≤ 0.5× the
    M tokens of the shortest penalised M alone that keeps it, cost less than every M alone that keeps it (at both
    ratios), and use ≤ 0.5× warm M's tokens. Each comparison is reported with its numbers, met or not."""
    warm, duet = rows["warm_large"], rows["duet"]
    floor = warm["accuracy"] - MATCH_POINTS
    keeping = {name: row for name, row in rows.items() if is_single_model(name) and row["accuracy"] >= floor}
    penalised = {name: row for name, row in keeping.items() if name.startswith("penalty_")}
    shortest = min(penalised, key=lambda name: penalised[name]["large_tokens"], default=None)
    result = {
        "accuracy_floor": floor,
        "duet_keeps_accuracy": duet["accuracy"] >= floor,
        "single_model_runs_keeping_accuracy": sorted(keeping),
        "shortest_penalised_keeping_accuracy": shortest,
        "large_tokens_vs_shortest_penalised": (
            duet["large_tokens"] / penalised[shortest]["large_tokens"] if shortest else None
        ),
        "large_tokens_vs_warm_large": duet["large_tokens"] / warm["large_tokens"],
    }
    for column in ("cost_world", "cost_paper"):
        cheapest = min(keeping, key=lambda name: keeping[name][column])
        result[f"{column}_cheapest_single_model"] = cheapest
        result[f"{column}_vs_cheapest_single_model"] = duet[column] / keeping[cheapest][column]
    ratio = result["large_tokens_vs_shortest_penalised"]
    result["met"] = bool(
        result["duet_keeps_accuracy"]
        and ratio is not None
        and ratio <= 0.5
        and result["cost_world_vs_cheapest_single_model"] < 1
        and result["cost_paper_vs_cheapest_single_model"] < 1
        and result["large_tokens_vs_warm_large"] <= 0.5
    )
    return result


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(1, panels, figsize=(4.4 * panels, 3.6))


def plot_pareto(seeds: dict[int, dict[str, dict]], labels: dict[str, str], path: Path) -> None:
    """Held-out accuracy against M tokens and against the params-weighted cost (both ratios): every system (one
    marker each) and every seed (one point each)."""
    plt, figure, axes = _figure(3)
    columns = (
        ("large_tokens", "M tokens per question"),
        ("cost_world", "cost, this world's sizes (M-token equiv.)"),
        ("cost_paper", "cost at 8B : 0.6B (M-token equiv.)"),
    )
    markers = "osD^v<>phX*"
    for axis, (column, title) in zip(axes, columns, strict=True):
        for index, (system, label) in enumerate(labels.items()):
            points = [(rows[system][column], rows[system]["accuracy"]) for rows in seeds.values() if system in rows]
            if points:
                axis.scatter(*zip(*points, strict=True), label=label, marker=markers[index % len(markers)], s=28)
        axis.set_xlabel(title, fontsize=9)
        axis.set_ylabel("held-out accuracy")
        axis.grid(alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=7)
    figure.set_figheight(4.6)
    figure.tight_layout(rect=(0, 0.2, 1, 1))  # the legend below the panels, clear of the points
    figure.savefig(path, dpi=120)
    plt.close(figure)


CURVE_PANELS = (("large_length", "M response length"), ("accuracy", "training accuracy"), ("lambda", "λ"))


def plot_curves(
    curves: dict[str, dict[int, dict[str, float]]],
    labels: dict[str, str],
    path: Path,
    panels: tuple[tuple[str, str], ...] = CURVE_PANELS,
) -> None:
    """One panel per ``(key, title)`` in ``panels``: every run's per-step value of that key (``curves``:
    ``{system: {step: row}}``; a run without the key, e.g. λ for M alone, is left out of that panel)."""
    plt, figure, axes = _figure(len(panels))
    for axis, (key, title) in zip(axes, panels, strict=True):
        for system, steps in curves.items():
            points = sorted((step, row[key]) for step, row in steps.items() if key in row)
            if points:
                axis.plot(*zip(*points, strict=True), label=labels[system])
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
