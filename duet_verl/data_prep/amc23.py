"""AMC 2023 (``math-ai/amc23``): 40 problems, an evaluation set.

Ground truth: ``answer``; copies that store it as a float (``27.0``) are written as ``27``.
"""

import sys

from duet_verl.data_prep.common import DatasetSpec, field, main, number_answer, text_field


def convert(row: dict) -> tuple[str, str, dict]:
    question = text_field(row, "question", "problem", what="question")
    return question, number_answer(field(row, "answer")), {"source_id": row.get("id")}


SPEC = DatasetSpec(
    name="amc23",
    hub_id="math-ai/amc23",
    config=None,
    splits={"test": "test"},
    data_source="amc23",
    ability="math",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
