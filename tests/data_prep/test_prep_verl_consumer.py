"""The produced parquet files through their real consumers: verl's RLHFDataset and the DUET scorer."""

import pytest
from omegaconf import OmegaConf

from duet_verl.core.scoring import score_answer
from duet_verl.data_prep import DATASETS, get_spec


def _rlhf_dataset(files, tokenizer, tmp_path):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 8192,
            "truncation": "error",
            "filter_overlong_prompts": True,  # also drops rows whose chat template fails: none may be dropped
            "filter_overlong_prompts_workers": 1,
            "return_raw_chat": True,
            "cache_dir": str(tmp_path / "verl_cache"),
        }
    )
    return RLHFDataset(data_files=[str(f) for f in files], tokenizer=tokenizer, config=config)


def _files(prepared_root):
    return sorted(prepared_root.glob("*/*.parquet"))


def test_every_dataset_and_split_was_produced(prepared_root):
    produced = {(f.parent.name, f.stem) for f in _files(prepared_root)}
    expected = {(name, split) for name in DATASETS for split in get_spec(name).splits}
    assert produced == expected


@pytest.mark.parametrize("name", DATASETS)
def test_rlhf_dataset_loads_every_row_and_the_scorer_accepts_its_ground_truth(
    name, prepared_root, tiny_tokenizer, tmp_path, read_parquet
):
    spec = get_spec(name)
    for split in spec.splits:
        path = prepared_root / name / f"{split}.parquet"
        expected = read_parquet(path)
        dataset = _rlhf_dataset([path], tiny_tokenizer, tmp_path)
        assert len(dataset) == len(expected) > 0
        for i in range(len(dataset)):
            item = dataset[i]
            assert item["data_source"] == spec.data_source
            assert item["raw_prompt"] == expected[i]["prompt"]
            assert item["raw_prompt"][0]["role"] == "user"
            extra = item["extra_info"]
            assert extra["split"] == split and item["index"] == extra["index"] == expected[i]["extra_info"]["index"]
            assert extra["question"] and extra["question"] in item["raw_prompt"][0]["content"]
            rendered = tiny_tokenizer.apply_chat_template(
                item["raw_prompt"], tokenize=False, add_generation_prompt=True
            )
            assert extra["question"] in rendered
            truth = item["reward_model"]["ground_truth"]
            assert item["reward_model"]["style"] == "rule"
            if spec.scorer == "gpqa":
                right, wrong = f"Thinking...\nAnswer: {truth}", f"Answer: {'B' if truth == 'A' else 'A'}"
            else:
                right, wrong = f"So the answer is $\\boxed{{{truth}}}$.", "So the answer is $\\boxed{\\text{no}}$."
            assert score_answer(item["data_source"], right, truth).score == 1.0
            assert score_answer(item["data_source"], wrong, truth).score == 0.0


def test_all_evaluation_sets_together_as_one_validation_set(prepared_root, tiny_tokenizer, tmp_path, read_parquet):
    """verl concatenates its val_files into one dataset: datasets with different extra_info fields must mix."""
    files = [f for f in _files(prepared_root) if f.stem == "test"]
    dataset = _rlhf_dataset(files, tiny_tokenizer, tmp_path)
    assert len(dataset) == sum(len(read_parquet(f)) for f in files)
    sources = {dataset[i]["data_source"] for i in range(len(dataset))}
    assert sources == {f.parent.name for f in files}
