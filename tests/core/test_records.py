"""The answer-record schema: declared once (``duet_verl.core.records``), documented from there. Each writer's
records are checked against it where the writer runs: tests/train/test_duet_step.py (training dump),
tests/train/test_duet_cpu_e2e.py (validation), tests/evaluate/test_evaluate_runner.py (evaluate)."""

from pathlib import Path

from duet_verl.core.records import ANSWER_FIELDS, WRITERS, markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_show_the_declared_fields():
    assert markdown() in (ROOT / "docs" / "evaluation.md").read_text(), (
        "docs/evaluation.md's answer-record tables differ from duet_verl/core/records.py; replace them with "
        "`python -m duet_verl.core.records`"
    )


def test_a_writer_adds_fields_and_never_renames_a_shared_one():
    for writer, fields in WRITERS.items():
        assert not set(fields) & set(ANSWER_FIELDS), writer
        assert all(meaning.strip() for meaning in fields.values()), writer
