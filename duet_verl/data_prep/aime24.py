"""AIME 2024 (``Maxwell-Jia/AIME_2024``): 30 problems; the hub's only split ``train`` is written as ``test``.

Ground truth: ``Answer``, an integer written without leading zeros (``033`` -> ``33``). Lower-case column
names (other AIME 2024 copies) are read too.
"""

import sys

from duet_verl.data_prep.common import DatasetSpec, integer_answer, main, text_field


def convert(row: dict) -> tuple[str, str, dict]:
    question = text_field(row, "Problem", "problem", "question", what="problem")
    answer = integer_answer(text_field(row, "Answer", "answer", what="answer"))
    return question, answer, {"source_id": row.get("ID", row.get("id"))}


SPEC = DatasetSpec(
    name="aime24",
    hub_id="Maxwell-Jia/AIME_2024",
    config=None,
    splits={"test": "train"},
    data_source="aime24",
    ability="math",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
