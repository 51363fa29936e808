"""``python -m duet_verl.evaluate --backend vllm`` on CPU, every mode, checked against the ``hf`` backend.

Both backends decode greedily (M and m) the same prompts with the same tiny models in fp32, so they must write
the same tokens, decoded to the same text (both decode the whole response, as training does: vLLM's own
streaming text would drop a trailing incomplete UTF-8 character, and m would read another signal).
``MAX_DIFFERENT`` bounds what float rounding can flip: vLLM's attention and GEMMs sum in another order than
transformers', so a near-tie between two tokens can fall either way, and everything after it differs.
"""

from __future__ import annotations

import json
import time

import pytest

from duet_verl.evaluate.__main__ import main

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

MODES = ["duet", "large", "small", "concise"]
MAX_DIFFERENT = 0.1  # of the generations; near-ties of random tiny models


def evaluate(backend: str, tiny_assets, out) -> dict:
    args = ["--large", str(tiny_assets["large"]), "--small", str(tiny_assets["small"]),
            "--data", str(tiny_assets["test"]), "--out", str(out), "--backend", backend, "--modes", *MODES,
            "--max-samples", "8", "--large-max-tokens", "24", "--small-max-tokens", "16",
            "--large-temperature", "0", "--max-model-len", "1024", "--no-progress"]  # fmt: skip
    assert main(args + (["--device", "cpu"] if backend == "hf" else [])) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return {(r["mode"], r["row"]): r for r in records}


@pytest.fixture(scope="module")
def both(tiny_assets, tmp_path_factory, record_wall_time):
    with pytest.MonkeyPatch.context() as env:
        # On CPU, vLLM sizes each engine's KV cache as gpu_memory_utilization x RAM (M 0.6 + m 0.25 by default:
        # more than a 24 GB machine has beside the rest), and pins its threads to cores unless told not to.
        env.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
        env.setenv("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        start = time.perf_counter()
        vllm = evaluate("vllm", tiny_assets, tmp_path_factory.mktemp("eval_vllm"))
        record_wall_time("evaluate --backend vllm, 4 modes x 8 questions (CPU)", time.perf_counter() - start)
    return vllm, evaluate("hf", tiny_assets, tmp_path_factory.mktemp("eval_hf"))


def test_every_mode_ran_on_vllm(both):
    vllm, _ = both
    assert sorted({mode for mode, _ in vllm}) == sorted(MODES)
    assert len(vllm) == len(MODES) * 8
    for (mode, _), record in vllm.items():
        if mode != "small":
            assert 0 < record["large_tokens"] <= 24
        if mode in ("duet", "small"):
            assert 0 < record["small_tokens"] <= 16


def test_greedy_generations_match_the_hf_backend(both):
    vllm, hf = both
    assert vllm.keys() == hf.keys()
    texts = [(key, field) for key in vllm for field in ("large_text", "small_text") if hf[key][field] is not None]
    different = [(key, field) for key, field in texts if vllm[key][field] != hf[key][field]]
    print(f"vllm vs hf greedy: {len(different)} of {len(texts)} generations differ: {different}")
    assert len(different) <= MAX_DIFFERENT * len(texts), different
    for key in vllm:
        same_inputs = all(vllm[key][f] == hf[key][f] for f in ("large_text", "small_text"))
        if same_inputs:
            assert vllm[key]["correct"] == hf[key]["correct"], key
