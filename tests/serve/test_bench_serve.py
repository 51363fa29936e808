"""``benchmarks/bench_serve.py`` end to end on the tiny pair: both modes measured, scored, and the saving is the
ratio of their M tokens."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]


def test_the_serving_benchmark_runs_and_reports_both_modes(tiny_assets, tmp_path):
    out = tmp_path / "bench"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "bench_serve.py"), "--backend", "hf",
        "--large", str(tiny_assets["large"]), "--small", str(tiny_assets["small"]), "--data", str(tiny_assets["test"]),
        "--requests", "8", "--concurrency", "4", "--large-max-tokens", "24", "--small-max-tokens", "8",
        "--out", str(out),
    ]  # fmt: skip
    printed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True).stdout
    duet, alone = json.loads((out / "bench_serve.json").read_text())["rows"]
    assert (duet["mode"], alone["mode"]) == ("DUET (M → m)", "M alone") and "| DUET (M → m) | 8 |" in printed
    for row in (duet, alone):
        assert row["requests"] == 8 and row["requests_per_s"] > 0 and 0 < row["p50_s"] <= row["p95_s"]
        assert 0.0 <= row["accuracy"] <= 1.0
    assert 0 < duet["large_tokens_per_request"] <= 24 and 0 < alone["large_tokens_per_request"] <= 24 + 8
    assert duet["large_token_saving"] == round(
        1 - duet["large_tokens_per_request"] / alone["large_tokens_per_request"], 3
    )
