"""DUET with M and m from different families, both ways, through ``recipes/run_duet_cpu_tiny.sh``.

The Llama-style family (``tiny.build_llama_pair``) differs from the Qwen3 fixtures in vocabulary, special tokens,
chat template (which opens ``<think>`` in the prompt) and architecture, and its thinking tags are special tokens.
The signal crosses as text: M's response is decoded with M's tokenizer (markers kept), m's prompt is rendered
with m's. Each run: 2 steps and a validation, samples dumped.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest

from duet_verl.core import extract_signal
from duet_verl.experiments.runs import METRICS_FILE, file_logger, read_metrics

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["llama_M_qwen_m", "qwen_M_llama_m"])
def pair_run(request, tiny_assets, llama_assets, tmp_path_factory, record_wall_time):
    out = tmp_path_factory.mktemp(request.param)
    model = (
        f"actor_rollout_ref.model.path={llama_assets['llama_large']}"
        if request.param.startswith("llama_M")
        else f"small_actor_rollout_ref.model.path={llama_assets['llama_small']}"
    )
    logger_env, logger = file_logger(out)
    env = {**os.environ, "TINY_DIR": str(tiny_assets["tokenizer"].parent), "OUT_DIR": str(out), "STEPS": "2",
           **logger_env}  # fmt: skip
    command = ["bash", str(ROOT / "recipes" / "run_duet_cpu_tiny.sh"), model, "trainer.test_freq=2",
               f"trainer.rollout_data_dir={out}/samples", f"trainer.validation_data_dir={out}/validation",
               *logger]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    record_wall_time(f"DUET 2 steps + validation, {request.param} (CPU)", time.perf_counter() - start)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    return request.param, out, read_metrics(out / METRICS_FILE)


def test_both_models_train_with_finite_losses(pair_run):
    _, _, metrics = pair_run
    assert sorted(metrics) == [1, 2]
    for step in (1, 2):
        for key in ("large/actor/pg_loss", "small/actor/pg_loss", "duet/r_Mm", "duet/reward_large_mean"):
            assert math.isfinite(metrics[step][key]), (step, key)


def test_signals_reach_m_intact(pair_run, tiny_tokenizer, llama_assets):
    """Each m prompt holds the question and the signal extracted from M's own decoding, in m's tokenization,
    with no special-token debris from either tokenizer."""
    from transformers import AutoTokenizer

    name, out, _ = pair_run
    llama = AutoTokenizer.from_pretrained(str(llama_assets["llama_tokenizer"]))
    small_tokenizer = tiny_tokenizer if name.startswith("llama_M") else llama
    debris = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>",
              "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}  # fmt: skip
    records = [json.loads(line) for step in (1, 2)
               for line in (out / "samples" / f"duet_step_{step}.jsonl").read_text().splitlines()]  # fmt: skip
    assert records
    for record in records:
        assert record["signal"] == extract_signal(record["large_text"]).text
        assert record["signal"] in record["small_prompt"] and record["question"] in record["small_prompt"]
        assert record["small_prompt"].lstrip().startswith("user\n") and record["small_prompt"].endswith("</think>")
        assert not any(token in record["signal"] for token in debris), record["signal"]
        # m's prompt is m's own tokenization of that text: re-encoding it with m's tokenizer gives it back
        ids = small_tokenizer(record["small_prompt"].lstrip(), add_special_tokens=False)["input_ids"]
        assert small_tokenizer.decode(ids, skip_special_tokens=False).strip() == record["small_prompt"].strip()
    validation = [json.loads(line) for line in (out / "validation" / "val_step_2.jsonl").read_text().splitlines()]
    assert len(validation) == 8  # the tiny test set: 8 questions x val n=1 x val k=1
    for record in validation:
        assert record["signal"] == extract_signal(record["large_text"]).text
        assert not any(token in record["signal"] for token in debris), record["signal"]
