"""Every real public row in ../shared/fixtures converts and passes the scorer check (skipped without shared/)."""

import pytest

from duet_verl.data_prep import get_spec
from duet_verl.data_prep.common import prepare


@pytest.mark.parametrize(
    ("name", "file", "rows"),
    [
        ("math500", "math500.jsonl", 500),
        ("aime24", "aime24.jsonl", 30),
        ("aime25", "aime25_math-ai.jsonl", 30),
        ("amc23", "amc23.jsonl", 40),
        ("deepscaler", "deepscaler_sample.jsonl", 3),
        ("dapo_math17k", "dapo_math17k_original_sample.jsonl", 3),
    ],
)
def test_all_shared_rows_convert(shared_fixtures, tmp_path, read_parquet, name, file, rows):
    written = prepare(get_spec(name), shared_fixtures / "datasets" / file, tmp_path)
    assert len(read_parquet(next(iter(written.values())))) == rows


def test_math500_solutions_box_the_published_answer(shared_fixtures, tmp_path, write_jsonl, read_parquet):
    """MATH-lighteval's rule (last box of the solution) agrees with MATH-500's ``answer`` on all 500 problems."""
    import json

    source = [json.loads(line) for line in open(shared_fixtures / "datasets" / "math500.jsonl")]
    as_lighteval = [
        {"problem": r["problem"], "level": f"Level {r['level']}", "solution": r["solution"], "type": r["subject"]}
        for r in source
    ]
    path = prepare(
        get_spec("math_lighteval"), write_jsonl(tmp_path / "test.jsonl", as_lighteval), tmp_path, splits=["test"]
    )
    boxed = [row["reward_model"]["ground_truth"] for row in read_parquet(path["test"])]
    from duet_verl.core.scoring import score_answer

    for box, raw in zip(boxed, source, strict=True):
        assert score_answer("math", f"\\boxed{{{box}}}", raw["answer"]).score == 1.0, (box, raw["answer"])
