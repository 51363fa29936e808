"""GSM8K (``openai/gsm8k``, config ``main``): grade-school word problems, a small sanity set (train and test).

Ground truth: the number after the solution's final ``####``, without thousands separators (``1,234`` -> ``1234``).
"""

import sys

from duet_verl.data_prep.common import BadRowError, DatasetSpec, main, number_answer, text_field


def convert(row: dict) -> tuple[str, str, dict]:
    solution = text_field(row, "answer", what="answer")
    if "####" not in solution:
        raise BadRowError("the answer has no '#### N' line")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    return text_field(row, "question", what="question"), number_answer(answer), {}


SPEC = DatasetSpec(
    name="gsm8k",
    hub_id="openai/gsm8k",
    config="main",
    splits={"train": "train", "test": "test"},
    data_source="gsm8k",
    ability="math",
    convert=convert,
    scorer="gsm8k",  # a boxed answer, as every math scorer, or verl's GSM8K form: the number after '####'
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
