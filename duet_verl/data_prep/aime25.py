"""AIME 2025 (``yentinglin/aime_2025``): 30 problems; the hub's only split ``train`` is written as ``test``.

Columns: ``problem`` (``question`` in an early revision), ``answer`` (str); the ``math-ai/aime25`` layout
(``problem``, ``answer`` as int, ``id`` as str) is read too. Ground truth: the integer answer.
"""

import sys

from duet_verl.data_prep.common import DatasetSpec, integer_answer, main, text_field


def convert(row: dict) -> tuple[str, str, dict]:
    question = text_field(row, "problem", "question", "Problem", what="problem")
    answer = integer_answer(text_field(row, "answer", "Answer", what="answer"))
    return question, answer, {"source_id": row.get("id", row.get("ID"))}


SPEC = DatasetSpec(
    name="aime25",
    hub_id="yentinglin/aime_2025",
    config=None,
    splits={"test": "train"},
    data_source="aime25",
    ability="math",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
