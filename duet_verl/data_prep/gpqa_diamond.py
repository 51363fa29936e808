"""GPQA-Diamond (``Idavidrein/gpqa``, config ``gpqa_diamond``): 198 four-choice science questions. Gated: accept
the terms on the hub and log in (``hf auth login`` or ``HF_TOKEN``) first.

Prompt: the simple-evals multiple-choice template, for M and, as ``extra_info.question``, for m too: m must see
the choices, and the ``Answer: $LETTER`` line is the only answer format the GPQA scorer reads (the math
instruction's ``\\boxed{}`` has no such role here).

Choice order: fixed per question, independent of row order, run and Python version: permutation number
``int(sha256(f"{SHUFFLE_SEED}:{Record ID}")[:8 bytes]) % 24`` of ``itertools.permutations(range(4))`` applied
to (correct, incorrect 1, incorrect 2, incorrect 3); the question text stands in for a missing Record ID.
Ground truth: the letter where the correct answer lands.
"""

import hashlib
import itertools
import sys

from duet_verl.data_prep.common import DatasetSpec, main, text_field

SHUFFLE_SEED = "duet-gpqa-v1"  # changing it reshuffles every question: bump only with a new dataset version
LETTERS = "ABCD"
PERMUTATIONS = list(itertools.permutations(range(4)))  # lexicographic, so stable
TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before "
    "answering.\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)


def choice_order(key: str) -> tuple[int, ...]:
    """Which source choice goes to A, B, C, D (0 = the correct answer)."""
    digest = hashlib.sha256(f"{SHUFFLE_SEED}:{key}".encode()).digest()
    return PERMUTATIONS[int.from_bytes(digest[:8], "big") % len(PERMUTATIONS)]


def convert(row: dict) -> tuple[str, str, dict]:
    question = text_field(row, "Question", what="question")
    choices = [text_field(row, "Correct Answer", what="correct answer")]
    choices += [text_field(row, f"Incorrect Answer {i}", what=f"incorrect answer {i}") for i in (1, 2, 3)]
    record_id = str(row.get("Record ID") or "").strip()
    order = choice_order(record_id or question)
    shown = {letter: choices[source] for letter, source in zip(LETTERS, order, strict=True)}
    letter = LETTERS[order.index(0)]
    extra = {"source_id": record_id, "domain": row.get("High-level domain"), "subdomain": row.get("Subdomain")}
    return TEMPLATE.format(question=question, **shown), letter, extra


SPEC = DatasetSpec(
    name="gpqa_diamond",
    hub_id="Idavidrein/gpqa",
    config="gpqa_diamond",
    splits={"test": "train"},
    data_source="gpqa_diamond",
    ability="science",
    convert=convert,
    make_prompt=lambda question: question,  # the template is already in the question
    scorer="gpqa",
    gated=True,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
