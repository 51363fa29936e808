"""The division-of-labour world: the worked sums, splits that never pair a name and an addend twice, M's two SFT
sets (with and without the steps) and m's (random facts), all within the warm start's example length."""

import re

import pandas as pd
import pytest

from duet_verl.core import extract_signal, score_answer
from duet_verl.worlds import labour as lw
from duet_verl.worlds.learning import FILLERS, VALUES, WORLD_DATA_SOURCE

STEP = re.compile(r"(\d+) \+ (\d+)(?: \+ (\d+))? = (\d+)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from transformers import AutoTokenizer

    paths = lw.build_labour_world(tmp_path_factory.mktemp("labour"), seed=1)
    return paths, AutoTokenizer.from_pretrained(str(paths["tokenizer"]))


def test_worked_steps_add_up_for_every_pair():
    for value in VALUES:
        for addend in VALUES:
            text = lw.worked_steps(value, addend)
            assert text.startswith(f"{value} + {addend}: ") and text.endswith(f"; so {value + addend}.")
            (a1, b1, no_carry, ones), (a2, b2, carry, tens) = STEP.findall(text)
            assert (int(a1), int(b1), no_carry, int(ones)) == (value % 10, addend % 10, "", value % 10 + addend % 10)
            assert (int(a2), int(b2), int(carry or 0)) == (value // 10, addend // 10, int(ones) // 10)
            assert int(tens) == int(a2) + int(b2) + int(carry or 0)
            assert int(tens) * 10 + int(ones) % 10 == value + addend
            assert ("carry 1" in text) == (int(ones) >= 10)


def test_heldout_questions_pair_names_and_addends_training_never_paired():
    world = lw.make_labour_world(4)
    assert world == lw.make_labour_world(4) and world.facts != lw.make_labour_world(5).facts
    train, test = world.questions("train"), world.questions("test")
    assert len(train) == len(world.facts) * lw.TRAIN_ADDENDS and len(test) == len(world.facts) * lw.TEST_ADDENDS
    assert not {(q.name, q.addend) for q in train} & {(q.name, q.addend) for q in test}
    assert {q.name for q in test} == {q.name for q in train} == set(world.facts)
    assert all(q.value == world.facts[q.name] and str(q.addend) in q.text and q.name in q.text for q in train + test)
    with pytest.raises(ValueError, match="unknown split"):
        world.questions("val")


def test_rows_ask_for_the_sum_and_score_m_and_m_alone_apart(built):
    paths, _ = built
    world = lw.load_labour_world(paths["facts"].parent)
    assert world == lw.make_labour_world(1)
    for split in ("train", "test"):
        frame = pd.read_parquet(paths[split])
        truths = frame["reward_model"].map(lambda r: r["ground_truth"]).tolist()
        assert truths == [str(q.answer) for q in world.questions(split)]
        assert set(frame["data_source"]) == {WORLD_DATA_SOURCE}


def test_large_sft_sets_differ_only_in_the_steps(built):
    paths, _ = built
    world = lw.load_labour_world(paths["facts"].parent)
    with_steps, direct = (pd.read_parquet(paths[key]) for key in ("large_sft", "large_direct_sft"))
    assert with_steps["sft_prompt"].tolist() == direct["sft_prompt"].tolist()
    for completion, direct_completion in zip(with_steps["sft_completion"], direct["sft_completion"], strict=True):
        signal = extract_signal(completion).text
        assert STEP.search(signal) and not STEP.search(extract_signal(direct_completion).text)
        assert completion.split("</think>")[1] == direct_completion.split("</think>")[1]  # the same boxed answer
        facts = re.findall(r"The number of (\w+) is (\d+)\.", signal)
        assert all(world.facts[name] == int(value) for name, value in facts)  # M is taught the table
        assert score_answer(WORLD_DATA_SOURCE, completion, completion.split("boxed{")[1][:-1]).score == 1.0


def test_small_sft_set_teaches_the_steps_from_random_facts(built):
    paths, _ = built
    world = lw.load_labour_world(paths["facts"].parent)
    frame = pd.read_parquet(paths["small_sft"])
    told = [re.search(r"The number of (\w+) is (\d+)\.", prompt).groups() for prompt in frame["sft_prompt"]]
    assert sum(world.facts[name] == int(value) for name, value in told) < 0.05 * len(told)  # not the table
    with_steps = sum(bool(STEP.search(prompt)) for prompt in frame["sft_prompt"])
    assert 0.4 * len(frame) < with_steps < 0.6 * len(frame)  # half the signals already hold the steps
    for (_, value), completion in zip(told, frame["sft_completion"], strict=True):
        assert completion.startswith(f"\n\n{value} + ") and STEP.search(completion)


def test_every_digit_is_a_token_and_every_example_fits(built):
    from duet_verl.worlds.warm_start import SFT_RECIPES

    paths, tokenizer = built
    assert tokenizer.tokenize("so 162.")[-4:] == ["1", "6", "2", "."]
    recipes = lw.WARM_START_RECIPES
    assert set(recipes) == {"large", "large_direct", "small"} and recipes["large"].size == SFT_RECIPES["large"].size
    for recipe in recipes.values():
        frame = pd.read_parquet(paths[recipe.train_set])
        texts = zip(frame.sft_prompt, frame.sft_completion, strict=True)
        lengths = [len(tokenizer(prompt + completion)["input_ids"]) + 1 for prompt, completion in texts]
        assert max(lengths) <= recipe.max_length, (recipe.train_set, max(lengths))


def test_steps_left_out_ends_that_share_of_ms_chains_after_the_fact(built):
    paths, tokenizer = built
    world = lw.load_labour_world(paths["facts"].parent)
    default = lw.large_sft_rows(world, tokenizer)
    assert default == lw.large_sft_rows(world, tokenizer, steps_left_out=0.0)  # the option off draws nothing
    assert all(STEP.search(extract_signal(row["sft_completion"]).text) for row in default)
    rows = lw.large_sft_rows(world, tokenizer, steps_left_out=0.25)
    without = [row for row in rows if not STEP.search(extract_signal(row["sft_completion"]).text)]
    assert len(rows) == len(default) and 0.2 * len(rows) < len(without) < 0.3 * len(rows)
    for row in without:  # the answer is still the sum: of the table's number and the addend, or of two numbers
        asked = re.search(r"user\n(.*?\?|.*?\.)", row["sft_prompt"]).group(1)
        name = re.search(r"number of (\w+)", asked)
        numbers = [int(n) for n in re.findall(r"\d+", asked)] + ([world.facts[name.group(1)]] if name else [])
        assert row["sft_completion"].endswith(f"\\boxed{{{sum(numbers)}}}"), (asked, row["sft_completion"])
    with pytest.raises(ValueError, match="steps_left_out=1.0"):
        lw.build_labour_world(paths["facts"].parent / "bad", seed=1, steps_left_out=1.0)


def chain_content(chain: str) -> str:
    """A chain with every filler sentence taken out: what it tells beyond padding."""
    for filler in FILLERS:
        chain = chain.replace(filler, "")
    return chain.strip()


@pytest.mark.parametrize("steps_left_out", [0.0, 0.1, 0.5])
def test_no_warm_start_chain_is_empty_or_filler_only(built, steps_left_out):
    """An empty or filler-only chain teaches M that an empty signal answers: every chain of every warm-start set
    (M's with the steps and a share left out, the ablation's without them, m's signals, the table world's) tells a
    fact or a sum. Before the fix, a plain sum with its steps left out kept fillers alone (~150 chains a seed)."""
    from duet_verl.worlds import learning as table_world

    paths, tokenizer = built
    world = lw.load_labour_world(paths["facts"].parent)
    completions = {
        "large": [r["sft_completion"] for r in lw.large_sft_rows(world, tokenizer, steps_left_out=steps_left_out)],
        "large_direct": [r["sft_completion"] for r in lw.large_sft_rows(world, tokenizer, steps=False)],
        "table_large": [r["sft_completion"] for r in table_world.large_sft_rows(table_world.make_world(1), tokenizer)],
    }
    prompts = {  # m reads its signal in its prompt
        "small": [r["sft_prompt"] for r in lw.small_sft_rows(world, tokenizer)],
        "table_small": [r["sft_prompt"] for r in table_world.small_sft_rows(table_world.make_world(1), tokenizer)],
    }
    for name, texts in {**completions, **prompts}.items():
        chains = [extract_signal(text).text for text in texts]
        empty = [chain for chain in chains if not chain_content(chain)]
        assert not empty, (name, len(empty), empty[:3])
    answers = [re.search(r"boxed\{(\d+)\}", c).group(1) for c in completions["large_direct"]]
    for completion, answer in zip(completions["large_direct"], answers, strict=True):
        chain = extract_signal(completion).text
        assert chain.endswith(f" is {answer}.") or re.search(r"The number of \w+ is \d+\.$", chain), chain
