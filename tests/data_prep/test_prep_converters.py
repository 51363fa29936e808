"""Each dataset's conversion on fixtures in its real layout: bare question, prompt for M, normalised ground truth."""

import json

import pytest

from duet_verl.core import MATH_INSTRUCTION
from duet_verl.core.scoring import scorer_for
from duet_verl.data_prep import DATASETS, aime24, amc23, dapo_math17k, get_spec, gpqa_diamond, gsm8k, math_lighteval
from duet_verl.data_prep.common import (
    BadRowError,
    SchemaError,
    field,
    integer_answer,
    number_answer,
    prepare,
)


def test_every_dataset_has_a_spec_routed_to_its_scorer():
    assert set(DATASETS) == {
        "deepscaler", "dapo_math17k", "math_lighteval", "math500", "aime24", "aime25", "amc23", "gpqa_diamond", "gsm8k"
    }  # fmt: skip
    for name in DATASETS:
        spec = get_spec(name)
        assert spec.name == name == spec.data_source
        expected = {"gpqa_diamond": "gpqa", "gsm8k": "gsm8k"}.get(name, "math")  # gsm8k: boxed, or after '####'
        assert scorer_for(spec.data_source) == spec.scorer == expected


def test_math_instruction_is_the_authors():
    assert MATH_INSTRUCTION == " Let's think step by step and output the final answer within \\boxed{}."


@pytest.mark.parametrize(
    ("value", "expected"),
    [(33, "33"), ("033", "33"), (27.0, "27"), ("27.0", "27"), (" -1 ", "-1"), ("+5", "5"), ("0.50", "0.50"),
     (2.5, "2.5"), ("\\frac{1}{2}", "\\frac{1}{2}"), ("1,234", "1,234"), ("-0", "0")],
)  # fmt: skip
def test_number_answer(value, expected):
    assert number_answer(value) == expected


@pytest.mark.parametrize("value", [None, "", "  ", float("nan")])
def test_number_answer_missing_is_a_bad_row(value):
    with pytest.raises(BadRowError):
        number_answer(value)


def test_integer_answer_rejects_non_integers():
    assert integer_answer("007") == "7"
    with pytest.raises(BadRowError, match="not an integer"):
        integer_answer("\\frac{1}{2}")


def test_field_tells_a_missing_column_from_a_missing_value():
    assert field({"Problem": None, "problem": "x"}, "Problem", "problem") == "x"
    assert field({"answer": None}, "answer") is None
    with pytest.raises(SchemaError, match="none of the columns"):
        field({"foo": 1}, "answer", "Answer")


def test_math500(prepared_root, dataset_fixtures, read_parquet):
    rows = read_parquet(prepared_root / "math500" / "test.parquet")
    source = [json.loads(line) for line in open(dataset_fixtures / "math500.jsonl")]
    assert len(rows) == len(source)
    for row, raw in zip(rows, source, strict=True):
        assert row["extra_info"]["question"] == raw["problem"].strip()
        assert row["prompt"] == [{"role": "user", "content": raw["problem"].strip() + MATH_INSTRUCTION}]
        assert row["reward_model"] == {"style": "rule", "ground_truth": raw["answer"]}
        assert row["extra_info"]["source_id"] == raw["unique_id"]
    assert rows[0]["reward_model"]["ground_truth"] == "\\left( 3, \\frac{\\pi}{2} \\right)"


def test_aime24_integer_without_leading_zeros(prepared_root, read_parquet):
    rows = read_parquet(prepared_root / "aime24" / "test.parquet")
    assert rows[0]["reward_model"]["ground_truth"] == "33"  # the solution boxes "033"; Answer is 33
    assert rows[0]["extra_info"]["source_id"] == "2024-II-4" and rows[0]["extra_info"]["split"] == "test"
    converted = aime24.convert({"ID": "x", "Problem": "P?", "Solution": "", "Answer": "033"})
    assert converted == ("P?", "33", {"source_id": "x"})


def test_aime25_both_layouts(tmp_path, dataset_fixtures, read_parquet):
    yentinglin = read_parquet(prepare(get_spec("aime25"), dataset_fixtures / "aime25.jsonl", tmp_path / "a")["test"])
    raw = [json.loads(line) for line in open(dataset_fixtures / "aime25.jsonl")]
    assert isinstance(raw[0]["answer"], str) and isinstance(raw[0]["id"], int)
    assert [row["reward_model"]["ground_truth"] for row in yentinglin] == [str(int(r["answer"])) for r in raw]
    assert [row["extra_info"]["question"] for row in yentinglin] == [r["problem"] for r in raw]
    math_ai = dataset_fixtures / "variants" / "aime25_math-ai.jsonl"
    rows = read_parquet(prepare(get_spec("aime25"), math_ai, tmp_path / "b")["test"])
    assert [row["reward_model"]["ground_truth"] for row in rows] == ["70", "588", "16", "117", "279"]
    assert rows[0]["extra_info"]["question"].startswith("Find the sum of all integer bases")


def test_amc23_string_and_float_answers(prepared_root, tmp_path, dataset_fixtures, read_parquet):
    rows = read_parquet(prepared_root / "amc23" / "test.parquet")
    assert [row["reward_model"]["ground_truth"] for row in rows][:3] == ["27", "36", "45"]
    floats = read_parquet(prepare(amc23.SPEC, dataset_fixtures / "variants" / "amc23_float.jsonl", tmp_path)["test"])
    raw = [json.loads(line) for line in open(dataset_fixtures / "variants" / "amc23_float.jsonl")]
    assert isinstance(raw[0]["answer"], float)
    assert [row["reward_model"]["ground_truth"] for row in floats] == [str(int(r["answer"])) for r in raw]


def test_deepscaler_jsonl_and_json_array(prepared_root, tmp_path, dataset_fixtures, read_parquet):
    rows = read_parquet(prepared_root / "deepscaler" / "train.parquet")
    assert [row["reward_model"]["ground_truth"] for row in rows] == ["35", "60", "15"]
    assert rows[0]["data_source"] == "deepscaler" and rows[0]["ability"] == "math"
    again = read_parquet(
        prepare(get_spec("deepscaler"), dataset_fixtures / "variants" / "deepscaler.json", tmp_path)["train"]
    )
    assert again == rows


DAPO_WRAPPER_START = "Solve the following math problem step by step."


def test_dapo_all_three_layouts_give_the_same_rows(prepared_root, tmp_path, dataset_fixtures, read_parquet):
    processed = read_parquet(prepared_root / "dapo_math17k" / "train.parquet")
    assert processed[0]["reward_model"]["ground_truth"] == "34"
    assert processed[0]["extra_info"]["source_id"] == "9a9b6eb4-a1cb-49d1-8c1e-62eaf2f74079"
    for row in processed:
        question = row["extra_info"]["question"]
        assert DAPO_WRAPPER_START not in question and "Answer:" not in question
        assert row["prompt"][0]["content"] == question + MATH_INSTRUCTION
    for variant in ("dapo_math17k_processed_nowrapper.jsonl", "dapo_math17k_original.jsonl"):
        path = prepare(dapo_math17k.SPEC, dataset_fixtures / "variants" / variant, tmp_path / variant)["train"]
        assert read_parquet(path) == processed, variant


def test_dapo_unknown_wrapper_is_a_bad_row():
    row = {"prompt": DAPO_WRAPPER_START + " Reply in French.\n\nWhat is 1+1?", "solution": "2"}
    with pytest.raises(BadRowError, match="unknown wording"):
        dapo_math17k.convert(row)
    assert dapo_math17k.convert({"prompt": "What is 1+1?", "solution": "2"})[:2] == ("What is 1+1?", "2")


def test_math_lighteval_last_boxed_of_the_solution(prepared_root, read_parquet):
    train = read_parquet(prepared_root / "math_lighteval" / "train.parquet")
    test = read_parquet(prepared_root / "math_lighteval" / "test.parquet")
    assert len(train) == 6 and len(test) == 6
    assert [row["reward_model"]["ground_truth"] for row in train] == [
        "3", "6+9i", "11\\sqrt2", "1.25", "\\frac{3}{2}", "-\\frac{\\pi}{6}"
    ]  # fmt: skip
    assert train[-1]["extra_info"]["level"] == "Level ?" and train[0]["extra_info"]["subject"] == "Intermediate Algebra"
    nested = {
        "problem": "p",
        "level": "Level 1",
        "type": "Algebra",
        "solution": "a \\boxed{1} so \\boxed{\\frac{a}{b^{2}}}.",
    }
    assert math_lighteval.convert(nested)[1] == "\\frac{a}{b^{2}}"


def test_gsm8k_config_folder_and_thousands(prepared_root, read_parquet):
    train = read_parquet(prepared_root / "gsm8k" / "train.parquet")
    test = read_parquet(prepared_root / "gsm8k" / "test.parquet")
    assert [row["reward_model"]["ground_truth"] for row in train] == ["66", "315", "3000", "-2"]
    assert [row["reward_model"]["ground_truth"] for row in test] == ["150", "900", "11.5"]
    assert not any("DECOY" in row["extra_info"]["question"] for row in train)  # the socratic config is not read
    assert gsm8k.convert({"question": "q", "answer": "x\n#### 1,234,567"})[1] == "1234567"


def test_gpqa_prompt_letter_and_fixed_shuffle(prepared_root, dataset_fixtures, read_parquet):
    import csv

    rows = read_parquet(prepared_root / "gpqa_diamond" / "test.parquet")
    source = list(csv.DictReader(open(dataset_fixtures / "gpqa_diamond.csv", newline="")))
    assert len(rows) == len(source) == 6
    for row, raw in zip(rows, source, strict=True):
        text = row["prompt"][0]["content"]
        assert text == row["extra_info"]["question"]  # m sees the choices and the answer format too
        assert text.startswith("Answer the following multiple choice question. The last line of your response")
        assert raw["Question"].strip() in text
        letter = row["reward_model"]["ground_truth"]
        assert f"\n{letter}) {raw['Correct Answer'].strip()}" in text + "\n"
        for i in (1, 2, 3):
            assert raw[f"Incorrect Answer {i}"].strip() in text
        assert row["extra_info"]["source_id"] == raw["Record ID"] and row["ability"] == "science"
    assert len({row["reward_model"]["ground_truth"] for row in rows}) > 1  # not every answer at the same letter


PINNED_ORDERS = [(3, 1, 2, 0), (3, 0, 1, 2), (0, 3, 1, 2)]


def test_gpqa_shuffle_depends_only_on_the_record_id():
    row = {"Question": "Q?", "Correct Answer": "yes", "Incorrect Answer 1": "n1", "Incorrect Answer 2": "n2",
           "Incorrect Answer 3": "n3", "Record ID": "rec42"}  # fmt: skip
    first = gpqa_diamond.convert(row)
    assert gpqa_diamond.convert(dict(row)) == first
    assert gpqa_diamond.choice_order("rec42") == gpqa_diamond.choice_order("rec42")
    # pinned: a change of the documented rule (seed, hash, permutation order) must be deliberate
    assert [gpqa_diamond.choice_order(f"rec{i}") for i in range(3)] == PINNED_ORDERS
    letters = [gpqa_diamond.LETTERS[gpqa_diamond.choice_order(f"r{i}").index(0)] for i in range(2000)]
    assert all(400 < letters.count(letter) < 600 for letter in "ABCD")
