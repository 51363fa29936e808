"""Warm start plumbing: the SFT dataset feeds exactly the rollouts' token ids, the verl SFT config composes, and a
cached warm start runs verl's SFT trainer on the CPU backend (two steps, about 30 s). The full warm start and its
accuracies are measured by ``benchmarks/warm_start_world.py`` (about 3 min)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from duet_verl.core import render_small_prompt
from duet_verl.worlds import learning as world
from duet_verl.worlds import warm_start
from duet_verl.worlds.tiny import build_model

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)


@pytest.fixture(scope="module")
def large_set(built_world, world_tokenizer):
    return warm_start.PromptCompletionSFTDataset(str(built_world["large_sft"]), world_tokenizer, {})


def test_dataset_tokenizes_prompt_as_the_rollout_and_trains_on_completion_and_eos(
    built_world, world_tokenizer, large_set
):
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    # the builder verl's agent loop renders M's prompt ids with (the tiny models are model_type "qwen3")
    builder = create_continuous_token_builder(world_tokenizer, hf_model_type="qwen3")
    frame = pd.read_parquet(built_world["large_sft"])
    rows = world.world_rows(world.load_world(built_world["test"].parents[1]), "train")
    for index in (0, 1, len(frame) - 1):
        item = large_set[index]
        prompt_ids = list(builder.build_initial_tokens(rows[index % len(rows)]["prompt"]))
        completion_ids = world_tokenizer(frame["sft_completion"][index], add_special_tokens=False)["input_ids"]
        assert item["input_ids"].tolist() == prompt_ids + completion_ids + [world_tokenizer.eos_token_id]
        assert item["loss_mask"].tolist() == [0] * len(prompt_ids) + [1] * (len(completion_ids) + 1)
        assert item["position_ids"].tolist() == list(range(len(item["input_ids"])))


def test_small_dataset_prompt_is_the_duet_paper_prompt(built_world, world_tokenizer):
    dataset = warm_start.PromptCompletionSFTDataset(str(built_world["small_sft"]), world_tokenizer, {}, max_samples=5)
    frame = pd.read_parquet(built_world["small_sft"])
    assert len(dataset) == 5
    for index in range(5):
        prompt = frame["sft_prompt"][index]
        question, signal = prompt.removeprefix("user\n").removesuffix("\n</think>").split("\nassistant\n<think>\n")
        expected = render_small_prompt(world_tokenizer, "paper", question, signal).token_ids
        assert dataset[index]["input_ids"].tolist()[: len(expected)] == expected
        assert dataset[index]["loss_mask"].tolist().index(1) == len(expected)


def test_dataset_batches_with_verl_collator_and_rejects_overlong_examples(built_world, world_tokenizer, large_set):
    from verl.utils.dataset.dataset_utils import SFTTensorCollator

    batch = SFTTensorCollator("no_padding")([large_set[0], large_set[1]])
    assert batch["input_ids"].is_nested and batch["loss_mask"].is_nested
    with pytest.raises(ValueError, match="tokens"):
        warm_start.PromptCompletionSFTDataset(str(built_world["large_sft"]), world_tokenizer, {"max_length": 16})


def test_sft_command_composes_with_verls_sft_config(tmp_path):
    from hydra import compose, initialize_config_dir
    from verl.trainer import sft_trainer

    command = warm_start.sft_command(
        tmp_path / "m", tmp_path / "t.parquet", tmp_path / "c", warm_start.SFTRecipe("small", "small_sft", 1, 1e-3), 0
    )
    assert command[command.index("-m", 2) + 1] == "duet_verl.cpu.sft_trainer"
    overrides = command[command.index("duet_verl.cpu.sft_trainer") + 1 :]
    config_dir = str(Path(sft_trainer.__file__).parent / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(config_name="sft_trainer_engine", overrides=overrides)
    assert config.trainer.device == "cpu" and config.engine.strategy == "fsdp2"
    assert config.data.custom_cls.name == "PromptCompletionSFTDataset"
    assert not config.model.use_remove_padding


def test_a_cached_warm_start_runs_verls_sft_trainer_on_cpu(built_world, world_tokenizer, tmp_path):
    """``cached_warm_start`` end to end on a 64-row subset, one epoch (two optimizer steps): verl's SFT trainer through
    torchrun + gloo + FSDP2 on CPU, the result a loadable fp32 HF folder in the cache, found again by its content."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    subset = tmp_path / "subset.parquet"
    pd.read_parquet(built_world["small_sft"]).iloc[:64].to_parquet(subset)
    paths = {**built_world, "small_sft": subset}
    recipes = {"small": warm_start.SFTRecipe("small", "small_sft", epochs=1, lr=1e-3)}
    trained = warm_start.cached_warm_start(paths, tmp_path / "cache", seed=0, recipes=recipes)["small"]
    initial = build_model(tmp_path / "init", world_tokenizer, warm_start.WORLD_MODEL_SPECS["small"], seed=1)
    before = AutoModelForCausalLM.from_pretrained(str(initial))  # warm_start's initial weights for seed 0's m
    after = AutoModelForCausalLM.from_pretrained(str(trained))
    assert after.dtype == torch.float32  # verl labels its saved configs bf16; run_sft relabels the fp32 weights
    assert AutoTokenizer.from_pretrained(str(trained)).get_vocab() == world_tokenizer.get_vocab()
    assert not torch.equal(before.lm_head.weight, after.lm_head.weight)
    manifest = json.loads((trained.parent / "manifest.json").read_text())
    assert manifest["wall_s"] > 0 and "model.safetensors" in manifest["files"]
    assert warm_start.cached_warm_start(paths, tmp_path / "cache", seed=0, recipes=recipes)["small"] == trained
