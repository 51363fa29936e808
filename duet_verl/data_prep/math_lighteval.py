"""MATH (``DigitalLearningGmbH/MATH-lighteval``): the 12.5k Hendrycks MATH problems, train 7,500 / test 5,000.

Ground truth: the last ``\\boxed{}`` of ``solution``, read by the DUET scorer's own extractor (nested braces),
so training compares m's box with exactly what the scorer would extract from the reference solution.
"""

import sys

from duet_verl.core.scoring import last_boxed
from duet_verl.data_prep.common import BadRowError, DatasetSpec, main, text_field


def convert(row: dict) -> tuple[str, str, dict]:
    solution = text_field(row, "solution", what="solution")
    answer = last_boxed(solution)
    if answer is None or not answer.strip():
        raise BadRowError("no complete \\boxed{} answer in the solution")
    extra = {"level": row.get("level"), "subject": row.get("type", row.get("subject"))}
    return text_field(row, "problem", what="problem"), answer, extra


SPEC = DatasetSpec(
    name="math_lighteval",
    hub_id="DigitalLearningGmbH/MATH-lighteval",
    config=None,
    splits={"train": "train", "test": "test"},
    data_source="math_lighteval",
    ability="math",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
