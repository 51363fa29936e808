"""The vLLM backend end to end (skipped without CUDA and vllm). Set EVAL_LARGE_MODEL / EVAL_BASE_LARGE_MODEL /
EVAL_SMALL_MODEL to real models (e.g. Qwen/Qwen3-0.6B for all); by default it uses the tiny random fixtures."""

import importlib.util
import json
import os

import pytest
import torch

from duet_verl.evaluate.__main__ import main

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
    reason="needs a CUDA GPU and vllm (pip install -e '.[gpu]')",
)


def test_vllm_backend_all_modes(tiny_assets, base_large, tmp_path):
    large = os.environ.get("EVAL_LARGE_MODEL", str(tiny_assets["large"]))
    base = os.environ.get("EVAL_BASE_LARGE_MODEL", str(base_large))
    small = os.environ.get("EVAL_SMALL_MODEL", str(tiny_assets["small"]))
    out = tmp_path / "out"
    # base M's engine (0.45) must be gone before trained M's (0.45) and m's (0.2) start: all three do not fit
    args = ["--large", large, "--base-large", base, "--small", small, "--data", str(tiny_assets["test"]),
            "--out", str(out), "--backend", "vllm", "--modes", "duet", "large", "small", "concise",
            "--max-samples", "4", "--large-max-tokens", "64", "--small-max-tokens", "32", "--large-gpu-memory", "0.45",
            "--small-gpu-memory", "0.2", "--max-model-len", "2048", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 16
    assert all(0 < r["large_tokens"] <= 64 for r in records if r["mode"] in ("large", "concise", "duet"))
    assert all(0 < r["small_tokens"] <= 32 for r in records if r["mode"] in ("duet", "small"))
    assert {r["large_model"] for r in records if r["mode"] in ("large", "concise")} == {base}
    assert {r["large_model"] for r in records if r["mode"] == "duet"} == {large}
    summary = json.loads((out / "summary.json").read_text())["tiny_math"]
    assert summary["large"]["large_models"] == [base] and summary["duet"]["large_models"] == [large]
