"""DeepScaleR-Preview (``agentica-org/DeepScaleR-Preview-Dataset``): ~40k competition problems, DUET's default
training set.

Ground truth: ``answer`` as given (plain numbers or LaTeX). A row without one is a bad row: the answer is never
guessed from ``solution``, which is empty for many rows and not reliably boxed.
"""

import sys

from duet_verl.data_prep.common import DatasetSpec, main, text_field


def convert(row: dict) -> tuple[str, str, dict]:
    return text_field(row, "problem", what="problem"), text_field(row, "answer", what="answer"), {}


SPEC = DatasetSpec(
    name="deepscaler",
    hub_id="agentica-org/DeepScaleR-Preview-Dataset",
    config=None,
    splits={"train": "train"},
    data_source="deepscaler",
    ability="math",
    convert=convert,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
