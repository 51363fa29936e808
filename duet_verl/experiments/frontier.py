"""DUET against the single-model concise frontier: the systems' held-out rows, their params-weighted cost, the
target, the collapse rates and the pictures (``benchmarks/labour_world.py`` runs the systems; this module only
reads numbers).

Cost: m's tokens are not free. A question's params-weighted cost is Σ tokens × parameters over the two models,
reported in *M-token equivalents* (divided by M's parameter count), so M alone's cost is its M tokens. It is given
at this world's size ratio (the two tiny models' real parameter counts) and at the paper's 8B : 0.6B.
"""

from __future__ import annotations

import math
from pathlib import Path

PAPER_RATIO = 0.6 / 8  # m's parameters per M parameter: Qwen3-0.6B beside Qwen3-8B
MATCH_POINTS = 0.02  # "the same accuracy": within 2 points of warm-started M alone
TOKENS_RATIO = 0.5  # DUET must use at most this share of the M tokens of the shortest single model keeping accuracy
# A row's role in the comparison: warm M alone sets the floor; trained single models and DUET runs are the two
# frontiers; the rest (the warm pair, the ablation M, m alone) is reported beside them.
ROLES = ("warm_single", "single", "duet", "reference")


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


def accuracy_floor(rows: dict[str, dict]) -> float:
    """ "The same accuracy": within ``MATCH_POINTS`` of warm M alone, at its better decoding."""
    return max(row["accuracy"] for row in rows.values() if row["role"] == "warm_single") - MATCH_POINTS


def target(rows: dict[str, dict]) -> dict:
    """The target on one seed's rows (``{key: row}``; a row has ``role`` (``ROLES``), ``accuracy``,
    ``large_tokens`` and the two ``cost_*`` columns). DUET's shortest run that keeps the accuracy floor must use at
    most ``TOKENS_RATIO`` × the M tokens of the shortest single-model row that keeps it (trained M alone at any λ,
    either decoding, or warm M itself when none does) and cost less than every single-model row that keeps it, at
    both size ratios. Each comparison is reported with its numbers, met or not."""
    floor = accuracy_floor(rows)
    keeping = {key: row for key, row in rows.items() if row["accuracy"] >= floor}
    single = {key: row for key, row in keeping.items() if row["role"] in ("warm_single", "single")}
    duet = {key: row for key, row in keeping.items() if row["role"] == "duet"}
    shortest_single = min(single, key=lambda key: single[key]["large_tokens"])
    shortest_duet = min(duet, key=lambda key: duet[key]["large_tokens"], default=None)
    result = {
        "accuracy_floor": floor,
        "single_model_rows_keeping_accuracy": sorted(single),
        "duet_rows_keeping_accuracy": sorted(duet),
        "shortest_single_model": shortest_single,
        "shortest_duet": shortest_duet,
        "large_tokens_vs_shortest_single_model": None,
    }
    met = shortest_duet is not None
    if shortest_duet is not None:
        ratio = duet[shortest_duet]["large_tokens"] / single[shortest_single]["large_tokens"]
        result["large_tokens_vs_shortest_single_model"] = ratio
        met = ratio <= TOKENS_RATIO
    for column in ("cost_world", "cost_paper"):
        cheapest = min(single, key=lambda key: single[key][column])
        result[f"{column}_cheapest_single_model"] = cheapest
        result[f"{column}_vs_cheapest_single_model"] = None
        if shortest_duet is not None:
            result[f"{column}_vs_cheapest_single_model"] = duet[shortest_duet][column] / single[cheapest][column]
            met = met and result[f"{column}_vs_cheapest_single_model"] < 1
    result["met"] = bool(met)
    return result


def collapse_rates(seeds: dict[int, dict[str, dict]], systems: dict[str, list[str]]) -> dict[str, dict]:
    """Per system (``{system: its row keys}``, e.g. one per decoding), on how many seeds its runs fell below the
    seed's accuracy floor at their best row: ``{system: {"seeds": n, "collapsed": k, "rate": k / n}}``."""
    rates = {}
    for system, keys in systems.items():
        runs = [rows for rows in seeds.values() if any(key in rows for key in keys)]
        collapsed = sum(
            max(rows[key]["accuracy"] for key in keys if key in rows) < accuracy_floor(rows) for rows in runs
        )
        rates[system] = {"seeds": len(runs), "collapsed": collapsed, "rate": collapsed / len(runs) if runs else None}
    return rates


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (fewer tokens or cost, at least the accuracy), by x."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda point: (point[0], -point[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(1, panels, figsize=(4.4 * panels, 3.6))


def plot_pareto(seeds: dict[int, dict[str, dict]], labels: dict[str, str], path: Path) -> None:
    """One row of panels per seed: held-out accuracy against M tokens and against the params-weighted cost (both
    ratios), every row a marker (``labels``: its legend name), and each frontier, DUET's runs and the single-model
    rows (warm M included), drawn as a step line through the points no other beats."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = (
        ("large_tokens", "M tokens per question"),
        ("cost_world", "cost, this world's sizes (M-token equiv.)"),
        ("cost_paper", "cost at 8B : 0.6B (M-token equiv.)"),
    )
    figure, axes = plt.subplots(len(seeds), 3, figsize=(13.2, 3.4 * len(seeds) + 1.4), squeeze=False)
    markers = "osD^v<>phX*P8H+x"
    frontiers = {"duet": ("DUET's frontier", "tab:red"), "single": ("single-model frontier", "tab:blue")}
    for axis_row, (seed, rows) in zip(axes, seeds.items(), strict=True):
        for axis, (column, title) in zip(axis_row, columns, strict=True):
            for index, (key, label) in enumerate(labels.items()):
                if key in rows:
                    row = rows[key]
                    axis.scatter(row[column], row["accuracy"], label=label, marker=markers[index % len(markers)], s=26)
            for kind, (label, colour) in frontiers.items():
                roles = ("duet",) if kind == "duet" else ("single", "warm_single")
                points = [(row[column], row["accuracy"]) for row in rows.values() if row["role"] in roles]
                if points:
                    axis.step(*zip(*pareto_front(points), strict=True), where="post", color=colour, alpha=0.5,
                              label=label)  # fmt: skip
            axis.axhline(accuracy_floor(rows), color="grey", linestyle=":", linewidth=1, label="accuracy floor")
            axis.set_xlabel(title, fontsize=9)
            axis.set_ylabel(f"seed {seed}: held-out accuracy", fontsize=9)
            axis.grid(alpha=0.3)
    handles = {}  # one legend entry per label, over every panel
    for axis in axes.flat:
        handles.update((label, handle) for handle, label in zip(*axis.get_legend_handles_labels(), strict=True))
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=4, fontsize=7)
    figure.tight_layout(rect=(0, 1.3 / (3.4 * len(seeds) + 1.4), 1, 1))  # the legend below the panels
    figure.savefig(path, dpi=110)
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
