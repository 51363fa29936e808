"""The vLLM path end to end on one GPU (skipped without CUDA and vllm): ``tests/gpu/smoke_duet_vllm.sh``.

Run on a GPU node (80 GB class) with ``python -m pytest tests/gpu -s``; set LARGE_MODEL / SMALL_MODEL / DATA_DIR as
the script says. CI has no GPU, so this never runs there; the memory check's analysis is tested on CPU
(test_memory_trace.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import torch

from duet_verl.experiments.runs import read_metrics

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
    reason="needs a CUDA GPU and vllm (pip install -e '.[gpu]')",
)


def test_one_duet_step_on_vllm(tmp_path):
    script = Path(__file__).with_name("smoke_duet_vllm.sh")
    env = {**os.environ, "OUT_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=3600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    metrics = read_metrics(tmp_path / "metrics.jsonl")[1]
    assert "duet/r_Mm" in metrics and "large/actor/pg_loss" in metrics and "small/actor/pg_loss" in metrics
    assert "[duet] rollout engine awake: small" in output
    # engines asking for 0.55 + 0.5 of the GPU, and memory given back at every sleep (tests/gpu/memory_trace.py)
    assert "[memory] ok:" in output, output[-8000:]
