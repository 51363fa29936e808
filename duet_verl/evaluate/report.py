"""``summary.json``, the Markdown tables and the accuracy-vs-M-tokens plot, all from ``metrics.summarize``."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = (
    "mode",
    "n",
    "accuracy (95% CI)",
    "M tokens",
    "M thinking tokens",
    "m tokens",
    "empty signals (m's acc. on them)",
    "M token saving vs large",
    "M s",
    "m s",
    "acc. per 1k M tokens",
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _empty(s: dict) -> str:
    """The share of m's answers that read an empty signal, and m's accuracy on those (– without a signal)."""
    share = s.get("signal_empty_fraction")
    if share is None:
        return "–"
    return _pct(share) + ("" if s["accuracy_empty_signal"] is None else f" ({_pct(s['accuracy_empty_signal'])})")


def _row(mode: str, s: dict) -> list[str]:
    accuracy = f"{100 * s['accuracy']:.1f}"
    if s["seeds"] > 1:
        accuracy += f" ± {100 * s['accuracy_seed_std']:.1f}"
    low, high = s["accuracy_ci95"]
    large = f"{s['mean_large_tokens']:.1f}"
    if s["seeds"] > 1:
        large += f" ± {s['mean_large_tokens_seed_std']:.1f}"
    ipt = s["intelligence_per_1k_tokens"]
    return [
        mode,
        f"{s['questions']}×{s['seeds']}",
        f"{accuracy} [{100 * low:.1f}, {100 * high:.1f}]",
        large,
        f"{s['mean_large_thinking_tokens']:.1f}",
        f"{s['mean_small_tokens']:.1f}",
        _empty(s),
        _pct(s["token_saving_vs_large"]),
        f"{s['large_seconds']:.2f}",
        f"{s['small_seconds']:.2f}",
        "–" if ipt is None else f"{ipt:.3f}",
    ]


def _models_line(by_mode: dict[str, dict]) -> str | None:
    """Which M wrote each mode's responses: base M and trained M differ when a run compares the two."""
    modes_of: dict[str, list[str]] = {}
    for mode, s in by_mode.items():
        for model in s.get("large_models", []):
            modes_of.setdefault(model, []).append(f"`{mode}`")
    if not modes_of:
        return None
    return "M: " + "; ".join(f"{model} ({', '.join(modes)})" for model, modes in modes_of.items())


def markdown(summary: dict[str, dict[str, dict]]) -> str:
    """One table per benchmark, then which M wrote which mode; accuracy in %, ``± std`` across seeds."""
    parts = []
    for benchmark, by_mode in summary.items():
        lines = [f"### {benchmark}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_row(mode, s)) + " |" for mode, s in by_mode.items()]
        models = _models_line(by_mode)
        if models:
            lines += ["", models]
        parts.append("\n".join(lines))
    note = (
        "n = questions × seeds. Tokens are means per sample; M s / m s are summed generation wall-clock seconds "
        "(when `duet` and `large` use the same M, one generation serves both and both show its seconds)."
    )
    return "\n\n".join(parts + [note]) + "\n"


def plot(summary: dict[str, dict[str, dict]], path: Path) -> Path:
    """Accuracy (with its 95% interval) against mean M output tokens, one panel per benchmark.

    Points are labelled as well as coloured: ``duet`` and ``large`` share M's tokens when they use the same M.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = list(summary)
    fig, axes = plt.subplots(1, len(benchmarks), figsize=(4.5 * len(benchmarks), 4), squeeze=False)
    for axis, benchmark in zip(axes[0], benchmarks, strict=True):
        for mode, s in summary[benchmark].items():
            low, high = s["accuracy_ci95"]
            y = 100 * s["accuracy"]
            axis.errorbar(
                s["mean_large_tokens"],
                y,
                yerr=[[max(0.0, y - 100 * low)], [max(0.0, 100 * high - y)]],
                fmt="o",
                capsize=3,
                label=mode,
            )
            axis.annotate(mode, (s["mean_large_tokens"], y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        axis.set_title(benchmark)
        axis.set_xlabel("mean M output tokens")
        axis.set_ylabel("accuracy (%)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(summary: dict[str, dict[str, dict]], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {
        "summary": out_dir / "summary.json",
        "table": out_dir / "summary.md",
        "plot": out_dir / "accuracy_vs_tokens.png",
    }
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    paths["table"].write_text(markdown(summary))
    if summary:
        plot(summary, paths["plot"])
    return paths
