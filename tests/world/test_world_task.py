"""The learning world: deterministic tables, splits that share facts, verl row schema, scoring and SFT rendering."""

import re
from collections import Counter

import pandas as pd
import pytest

from duet_verl.core import MATH_INSTRUCTION, extract_signal, render_small_prompt, score_answer, scorer_for
from duet_verl.worlds import learning as world


def test_world_is_deterministic_per_seed():
    assert world.make_world(5) == world.make_world(5)
    assert world.make_world(5).facts != world.make_world(6).facts
    facts = world.make_world(5, num_facts=30).facts
    assert len(facts) == 30 and len(set(facts.values())) == 30
    assert set(facts) <= set(world.NAME_POOL) and all(v in world.VALUES for v in facts.values())
    with pytest.raises(ValueError):
        world.make_world(0, num_facts=0)


def test_heldout_split_asks_every_fact_in_a_phrasing_its_training_questions_never_use():
    w = world.make_world(1)
    train, test = w.questions("train"), w.questions("test")
    assert Counter(name for _, name, _ in test) == Counter(list(w.facts))
    assert Counter(name for _, name, _ in train) == Counter({n: len(world.QUESTION_TEMPLATES) - 1 for n in w.facts})
    assert not {q for q, _, _ in train} & {q for q, _, _ in test}
    assert all(w.facts[name] == value for _, name, value in train + test)
    # every phrasing is held out for some name and trained on for others
    assert len({w.heldout_template(name) for name in w.facts}) == len(world.QUESTION_TEMPLATES)


@pytest.mark.parametrize("split", ["train", "test"])
def test_rows_follow_verl_schema_and_score_as_math(split):
    w = world.make_world(2)
    rows = world.world_rows(w, split)
    assert len(rows) == len(w.questions(split))
    for index, row in enumerate(rows):
        assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
        question = row["extra_info"]["question"]
        assert row["prompt"] == [{"role": "user", "content": question + MATH_INSTRUCTION}]
        assert row["extra_info"] == {"split": split, "index": index, "question": question}
        assert row["reward_model"]["style"] == "rule"
        truth = row["reward_model"]["ground_truth"]
        assert isinstance(truth, str)
        assert score_answer(row["data_source"], f"so \\boxed{{{truth}}}", truth).score == 1.0
        assert score_answer(row["data_source"], f"\\boxed{{{int(truth) + 1}}}", truth).score == 0.0
    assert scorer_for(world.WORLD_DATA_SOURCE) == "math"


def test_build_world_writes_the_rows_and_the_table(built_world):
    w = world.load_world(built_world["test"].parents[1])
    assert w == world.make_world(3)
    for split in ("train", "test"):
        frame = pd.read_parquet(built_world[split])
        assert frame["reward_model"].map(lambda r: r["ground_truth"]).tolist() == [
            str(v) for _, _, v in w.questions(split)
        ]


def test_build_world_is_deterministic(built_world, tmp_path):
    again = world.build_world(tmp_path, seed=3)
    for key in ("train", "test", "large_sft", "small_sft"):
        pd.testing.assert_frame_equal(pd.read_parquet(built_world[key]), pd.read_parquet(again[key]))


def test_world_words_are_single_tokens(world_tokenizer):
    for name in world.NAME_POOL:
        assert len(world_tokenizer(f" {name}", add_special_tokens=False)["input_ids"]) == 1
    for value in world.VALUES:
        assert len(world_tokenizer(f" {value}", add_special_tokens=False)["input_ids"]) == 1


def test_large_sft_rows_are_the_rl_prompt_plus_a_verbose_chain(built_world, world_tokenizer):
    w = world.load_world(built_world["test"].parents[1])
    frame = pd.read_parquet(built_world["large_sft"])
    rows = world.world_rows(w, "train")
    assert len(frame) == 16 * len(rows)
    filler_counts = Counter()
    for i, (prompt, completion) in enumerate(zip(frame["sft_prompt"], frame["sft_completion"], strict=True)):
        row = rows[i % len(rows)]
        # what verl's RL dataset feeds M: the chat template with the generation prompt, thinking on
        expected = world_tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        assert prompt == expected
        truth = row["reward_model"]["ground_truth"]
        (name,) = [n for n in w.facts if re.search(rf"\b{n}\b", row["extra_info"]["question"])]
        assert completion.startswith("<think>\n") and completion.endswith(f"\n</think>\n\n\\boxed{{{truth}}}")
        signal = extract_signal(completion).text
        assert signal.endswith(f"The number of {name} is {truth}.")
        assert score_answer(row["data_source"], completion, truth).score == 1.0
        filler_counts[sum(signal.count(f) for f in world.FILLERS)] += 1
    assert set(filler_counts) == set(range(world.MAX_FILLERS + 1))


def test_small_sft_rows_are_the_duet_paper_prompt_and_copy_a_random_number(built_world, world_tokenizer):
    w = world.load_world(built_world["test"].parents[1])
    frame = pd.read_parquet(built_world["small_sft"])
    matches_table = 0
    for prompt, completion in zip(frame["sft_prompt"], frame["sft_completion"], strict=True):
        question, signal = re.fullmatch(r"user\n(.*)\nassistant\n<think>\n(.*)\n</think>", prompt, re.S).groups()
        assert prompt == render_small_prompt(world_tokenizer, "paper", question, signal).text
        name, value = re.search(r"The number of (\w+) is (\d+)\.$", signal).groups()
        assert name in question and name in w.facts
        assert completion == f"\n\n\\boxed{{{value}}}"
        matches_table += int(value) == w.facts[name]
    # the numbers are random, so m cannot learn the table from its warm start
    assert matches_table < 0.05 * len(frame)
