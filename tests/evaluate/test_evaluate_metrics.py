"""Summary numbers on hand-made records whose correctness and token counts are known."""

import json
import math
import subprocess
import sys

import pytest

from duet_verl.evaluate.metrics import summarize, wilson_interval
from duet_verl.evaluate.report import markdown, write_reports


def record(mode, row, correct, large=0, thinking=0, small=0, seed=0, benchmark="bench", large_s=0.0, small_s=0.0):
    return {
        "benchmark": benchmark,
        "mode": mode,
        "seed": seed,
        "row": row,
        "correct": float(correct),
        "large_tokens": large,
        "large_thinking_tokens": thinking,
        "small_tokens": small,
        "large_seconds": large_s,
        "small_seconds": small_s,
    }


@pytest.fixture
def records():
    return [
        # large: 3/4 correct, 1000 M tokens each (800 thinking)
        *(record("large", row, row != 3, large=1000, thinking=800, large_s=2.0) for row in range(4)),
        # duet: 2/4 correct, 400 M tokens, 50 m tokens
        *(record("duet", row, row < 2, large=400, thinking=300, small=50, small_s=0.5) for row in range(4)),
        # small: 1/4, no M tokens
        *(record("small", row, row == 0, small=100) for row in range(4)),
    ]


def test_accuracy_tokens_saving_and_intelligence(records):
    summary = summarize(records)["bench"]
    assert list(summary) == ["duet", "large", "small"]
    large, duet, small = summary["large"], summary["duet"], summary["small"]
    assert (large["accuracy"], duet["accuracy"], small["accuracy"]) == (0.75, 0.5, 0.25)
    assert (large["samples"], large["questions"], large["seeds"]) == (4, 4, 1)
    assert duet["mean_large_tokens"] == 400 and duet["mean_large_thinking_tokens"] == 300
    assert duet["mean_small_tokens"] == 50 and small["mean_small_tokens"] == 100
    assert duet["token_saving_vs_large"] == pytest.approx(0.6)
    assert large["token_saving_vs_large"] == 0.0 and small["token_saving_vs_large"] == 1.0
    assert large["intelligence_per_1k_tokens"] == pytest.approx(0.75)
    assert duet["intelligence_per_1k_tokens"] == pytest.approx(0.5 / 0.4)
    assert small["intelligence_per_1k_tokens"] is None
    assert large["large_seconds"] == 8.0 and duet["small_seconds"] == 2.0 and duet["total_seconds"] == 2.0


def test_empty_signals_are_counted_where_m_read_a_signal(records):
    """duet: the share of m's answers that read an empty signal and m's accuracy on those; none for M's modes."""
    signals = ["The number of Zornas is 58.", "", "", "so 95."]  # rows 0 and 1 right; row 1 read nothing
    for r in records:
        r["signal"] = signals[r["row"]] if r["mode"] == "duet" else None
    summary = summarize(records)["bench"]
    assert summary["duet"]["signal_empty_fraction"] == 0.5 and summary["duet"]["accuracy_empty_signal"] == 0.5
    assert summary["large"]["signal_empty_fraction"] is None and summary["large"]["accuracy_empty_signal"] is None
    assert "| 50.0% (50.0%) |" in markdown({"bench": summary})
    for r in records:
        r["signal"] = "a fact" if r["mode"] == "duet" else None
    duet = summarize(records)["bench"]["duet"]
    assert duet["signal_empty_fraction"] == 0.0 and duet["accuracy_empty_signal"] is None


def test_no_large_mode_means_no_saving(records):
    summary = summarize([r for r in records if r["mode"] != "large"])["bench"]
    assert summary["duet"]["token_saving_vs_large"] is None


def test_wilson_interval_known_values():
    low, high = wilson_interval(3, 4)
    assert (low, high) == (pytest.approx(0.3006, abs=1e-4), pytest.approx(0.9544, abs=1e-4))
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(5, 10) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert summarize([record("large", 0, 1, large=1)])["bench"]["large"]["accuracy_ci95"][1] == pytest.approx(1.0)


def test_mean_and_std_across_seeds():
    # seed 0: 2/2 correct, 100 tokens; seed 1: 0/2 correct, 300 tokens -> accuracy 0.5 ± 0.5, tokens 200 ± 100
    rows = [record("large", row, 1, large=100, seed=0) for row in range(2)]
    rows += [record("large", row, 0, large=300, seed=1) for row in range(2)]
    summary = summarize(rows)["bench"]["large"]
    assert (summary["samples"], summary["questions"], summary["seeds"]) == (4, 2, 2)
    assert summary["accuracy"] == 0.5 and summary["accuracy_seed_std"] == pytest.approx(0.5)
    assert summary["mean_large_tokens"] == 200 and summary["mean_large_tokens_seed_std"] == pytest.approx(100)
    assert "50.0 ± 50.0" in markdown({"bench": {"large": summary}})


def test_benchmarks_are_separate():
    rows = [record("large", 0, 1, large=10, benchmark="a"), record("large", 0, 0, large=30, benchmark="b")]
    summary = summarize(rows)
    assert summary["a"]["large"]["accuracy"] == 1.0 and summary["b"]["large"]["mean_large_tokens"] == 30


def test_reports_are_written(records, tmp_path):
    summary = summarize(records)
    paths = write_reports(summary, tmp_path)
    assert json.loads(paths["summary"].read_text())["bench"]["duet"]["accuracy"] == 0.5
    table = paths["table"].read_text()
    assert "### bench" in table and "| duet | 4×1 | 50.0 [" in table and "| 60.0% |" in table
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not math.isnan(summary["bench"]["duet"]["accuracy_ci95"][0])


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        ("duet_verl.evaluate.metrics, duet_verl.evaluate.report, duet_verl.inference.backends", "torch vllm"),
        # the runner and the CLI reach torch through duet_verl.core, but never vllm
        ("duet_verl.evaluate.runner, duet_verl.evaluate.__main__, duet_verl.evaluate.inputs", "vllm transformers"),
    ],
)
def test_imports_stay_light(modules, absent):
    code = f"import sys, {modules}; print([m for m in {absent.split()!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_generators_old_home_names_their_new_one():
    code = "import warnings; warnings.simplefilter('error'); import duet_verl.evaluate.backends"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "FutureWarning: duet_verl.evaluate.backends has moved: import from duet_verl.inference.backends" in (
        done.stderr
    )
