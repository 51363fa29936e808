"""LoRA for both models through the fused worker group on CPU (``recipes/run_duet_cpu_tiny.sh``).

M and m each get a rank-8 adapter on every linear layer, merged into the weights the ``hf`` rollout receives
(``model.lora.merge=True``). M's reference is its own base with the adapter disabled (verl's ``ref_in_actor``),
read by the KL term in M's reward. Two steps with a checkpoint at step 2, then the same command resumes to step 3;
``verl.model_merger`` exports the last checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from duet_verl.experiments.runs import file_logger, read_metrics

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

ROOT = Path(__file__).resolve().parents[2]
LORA = [
    override
    for block in ("actor_rollout_ref", "small_actor_rollout_ref")
    for override in (f"{block}.model.lora_rank=8", f"{block}.model.lora_alpha=16",
                     f"{block}.model.target_modules=all-linear", f"{block}.model.lora.merge=True")
]  # fmt: skip


def run(tiny_dir: Path, out: Path, steps: int) -> str:
    """The recipe to ``steps`` (resuming from ``out``'s checkpoint); its metrics go to ``out/steps<steps>.jsonl``."""
    logger_env, logger = file_logger(out, f"steps{steps}.jsonl")
    env = {**os.environ, "TINY_DIR": str(tiny_dir), "OUT_DIR": str(out), "STEPS": str(steps), "LR": "1e-2",
           **logger_env}  # fmt: skip
    command = ["bash", str(ROOT / "recipes" / "run_duet_cpu_tiny.sh"), *LORA, "trainer.test_freq=-1",
               "trainer.save_freq=2", "trainer.resume_mode=auto", *logger]  # fmt: skip
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    return output


@pytest.fixture(scope="module")
def lora_runs(tiny_assets, tmp_path_factory, record_wall_time):
    out = tmp_path_factory.mktemp("lora")
    start = time.perf_counter()
    first = run(tiny_assets["tokenizer"].parent, out, steps=2)
    resumed = run(tiny_assets["tokenizer"].parent, out, steps=3)
    record_wall_time("DUET with LoRA on both models, 2 steps + resume to 3 (CPU)", time.perf_counter() - start)
    return out, first, resumed


def test_lora_rollouts_get_the_trained_weights(lora_runs):
    """Every step, each rollout engine's log-probs match its actor's (< 1e-3). M's actor has moved away from
    its base: the KL to the reference (the base, adapter off) is exactly 0 at step 1 (LoRA's B starts at zero)
    and not after the updates. verl's default estimator (``kl``, log p - log p_ref averaged over the sampled
    tokens) is signed, so its size is what counts (seen: |0.002-0.026| per token at step 2, one CI run -0.003;
    0.010-0.028 at step 3), far more than a rollout still on the base weights could hide under that gap."""
    out, _, _ = lora_runs
    metrics = read_metrics(out / "steps2.jsonl") | read_metrics(out / "steps3.jsonl")
    assert sorted(metrics) == [1, 2, 3]
    for step, values in metrics.items():
        for model in ("large", "small"):
            gap = values[f"{model}/training/rollout_probs_diff_max"]
            assert gap < 1e-3, (step, model, gap)
    kl = {step: abs(values["large/actor/reward_kl_penalty"]) for step, values in metrics.items()}
    assert kl[1] == 0.0 and kl[2] > 0.0 and kl[3] > 0.0 and max(kl[2], kl[3]) > 5e-3, kl


def test_a_lora_run_resumes_from_its_checkpoint(lora_runs):
    out, _, resumed = lora_runs
    assert f"resumed from {out}/checkpoints/global_step_2 at step 2" in resumed
    assert sorted(read_metrics(out / "steps3.jsonl")) == [3]
    for model in ("large", "small"):
        assert (out / "checkpoints" / "global_step_3" / model / "actor" / "lora_train_meta.json").is_file()


@pytest.mark.parametrize("model", ["large", "small"])
def test_model_merger_exports_the_frozen_base_and_the_trained_adapter(lora_runs, tiny_assets, tmp_path, model):
    out, _, _ = lora_runs
    target = tmp_path / model
    subprocess.run(
        [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
         "--local_dir", str(out / "checkpoints" / "global_step_3" / model / "actor"), "--target_dir", str(target)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    base = load_file(str(target / "model.safetensors"))
    # The base stayed frozen: the merger's output is the original, rounded to the dtype it writes (bf16, from
    # the config verl saves), tensor for tensor.
    original = {k: v.to(base[k].dtype) for k, v in load_file(str(tiny_assets[model] / "model.safetensors")).items()}
    assert base.keys() == original.keys() and all(torch.equal(base[k], original[k]) for k in base)
    adapter = load_file(str(target / "lora_adapter" / "adapter_model.safetensors"))
    trained = [name for name in adapter if "lora_B" in name]
    assert trained and any(adapter[name].abs().max() > 0 for name in trained)  # B starts at zero: it learned

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(target)), str(target / "lora_adapter"))
    weights = merged.merge_and_unload().state_dict()
    assert any(not torch.equal(weights[k].to(original[k].dtype), original[k]) for k in original if k in weights)
