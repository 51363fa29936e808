"""MATH-500 (``HuggingFaceH4/MATH-500``): the 500-problem MATH test subset, an evaluation set.

Ground truth: ``answer`` (LaTeX as published, e.g. ``\\left( 3, \\frac{\\pi}{2} \\right)``).
"""

import sys

from duet_verl.data_prep.common import DatasetSpec, main, text_field


def convert(row: dict) -> tuple[str, str, dict]:
    extra = {"source_id": row.get("unique_id"), "level": row.get("level"), "subject": row.get("subject")}
    return text_field(row, "problem", what="problem"), text_field(row, "answer", what="answer"), extra


SPEC = DatasetSpec(
    name="math500",
    hub_id="HuggingFaceH4/MATH-500",
    config=None,
    splits={"test": "test"},
    data_source="math500",
    ability="math",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
