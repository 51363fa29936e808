"""Unconvertible rows are reported (dataset, split, index) and fail the run unless skipped; writes are atomic."""

import json
import os
import re

import pyarrow.parquet as pq
import pytest

from duet_verl.data_prep import get_spec
from duet_verl.data_prep.common import DataPrepError, main, prepare, write_parquet

GOOD = {"problem": "What is 2+3?", "answer": "5", "solution": ""}


def _deepscaler_with_bad_rows(tmp_path, write_jsonl):
    rows = [GOOD, {**GOOD, "answer": ""}, {**GOOD, "problem": "   "}, {**GOOD, "answer": None}, GOOD]
    return write_jsonl(tmp_path / "deepscaler.jsonl", rows)


def test_bad_rows_fail_the_run_and_nothing_is_written(tmp_path, write_jsonl, capsys):
    source = _deepscaler_with_bad_rows(tmp_path, write_jsonl)
    with pytest.raises(DataPrepError, match="3 bad rows.*nothing written.*--skip-bad-rows"):
        prepare(get_spec("deepscaler"), source, tmp_path / "out")
    err = capsys.readouterr().err
    assert "bad row: dataset=deepscaler split=train index=1: empty answer" in err
    assert "index=2: empty problem" in err and "index=3: empty answer" in err
    assert "index=0" not in err and "index=4" not in err
    assert not (tmp_path / "out").exists()


def test_cli_exit_status_on_bad_rows(tmp_path, write_jsonl, capsys):
    source = _deepscaler_with_bad_rows(tmp_path, write_jsonl)
    args = ["--local-path", str(source), "--output-root", str(tmp_path / "out")]
    assert main(get_spec("deepscaler"), args) == 1
    assert "error: deepscaler: 3 bad rows" in capsys.readouterr().err
    assert main(get_spec("deepscaler"), [*args, "--skip-bad-rows"]) == 0
    assert "skipped 3 bad rows" in capsys.readouterr().out


def test_skip_bad_rows_keeps_the_good_ones_and_lists_the_skipped(tmp_path, write_jsonl, capsys, read_parquet):
    source = _deepscaler_with_bad_rows(tmp_path, write_jsonl)
    written = prepare(get_spec("deepscaler"), source, tmp_path / "out", skip_bad_rows=True)
    rows = read_parquet(written["train"])
    assert [row["extra_info"]["index"] for row in rows] == [0, 4]  # source positions, so the gaps show
    captured = capsys.readouterr()
    assert "deepscaler: skipped 3 bad rows" in captured.out and "train: 2 rows ->" in captured.out
    assert "index=3" in captured.err
    listed = [json.loads(line) for line in open(tmp_path / "out" / "deepscaler" / "bad_rows.jsonl")]
    assert [(r["split"], r["index"]) for r in listed] == [("train", 1), ("train", 2), ("train", 3)]
    # a clean run afterwards removes the stale list
    prepare(get_spec("deepscaler"), write_jsonl(tmp_path / "clean.jsonl", [GOOD]), tmp_path / "out")
    assert not (tmp_path / "out" / "deepscaler" / "bad_rows.jsonl").exists()


@pytest.mark.parametrize(
    ("name", "row", "reason"),
    [
        ("math500", {"problem": "p", "answer": "\\frac{1}{2", "unique_id": "u", "level": 1, "subject": "s"},
         "does not accept the ground truth"),  # unbalanced braces: no \boxed{} could ever match it
        ("math_lighteval", {"problem": "p", "solution": "It is 4.", "level": "Level 1", "type": "Algebra"},
         "no complete \\\\boxed"),
        ("math_lighteval", {"problem": "p", "solution": "\\boxed{\\frac{1}{2}", "level": "Level 1", "type": "Algebra"},
         "no complete \\\\boxed"),
        ("aime24", {"ID": "x", "Problem": "p", "Solution": "", "Answer": "1/2"}, "not an integer"),
        ("amc23", {"id": 1, "question": "q", "answer": None, "url": ""}, "missing answer"),
        ("gsm8k", {"question": "q", "answer": "The answer is 4."}, "no '#### N' line"),
        ("dapo_math17k", {"prompt": "What is 1+1?", "solution": "", "reward_model": {"ground_truth": ""}},
         "missing answer"),
        ("gpqa_diamond", {"Question": "q", "Correct Answer": "a", "Incorrect Answer 1": "b", "Incorrect Answer 2": "",
                          "Incorrect Answer 3": "d", "Record ID": "r"}, "empty incorrect answer 2"),
    ],
)  # fmt: skip
def test_bad_row_reasons(tmp_path, write_jsonl, capsys, name, row, reason):
    spec = get_spec(name)
    split = list(spec.splits)[-1]
    source = write_jsonl(tmp_path / "source.jsonl", [row])
    with pytest.raises(DataPrepError, match="1 bad rows"):
        prepare(spec, source, tmp_path / "out", splits=[split])
    err = capsys.readouterr().err
    assert f"bad row: dataset={name} split={split} index=0:" in err
    assert re.search(reason, err), err


def test_only_bad_rows_fails_even_when_skipping(tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "d.jsonl", [{**GOOD, "answer": ""}])
    with pytest.raises(DataPrepError, match="no usable rows"):
        prepare(get_spec("deepscaler"), source, tmp_path / "out", skip_bad_rows=True)
    assert not (tmp_path / "out" / "deepscaler" / "train.parquet").exists()


def test_wrong_layout_is_a_schema_error_not_a_pile_of_bad_rows(tmp_path, write_jsonl):
    source = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "target": "5"}] * 3)
    with pytest.raises(DataPrepError, match=r"none of the columns \['problem'\]"):
        prepare(get_spec("deepscaler"), source, tmp_path / "out", skip_bad_rows=True)


def test_a_crash_while_writing_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    target = tmp_path / "x" / "train.parquet"
    row = {"data_source": "deepscaler", "prompt": [{"role": "user", "content": "q"}], "ability": "math",
           "reward_model": {"style": "rule", "ground_truth": "1"},
           "extra_info": {"split": "train", "index": 0, "question": "q"}}  # fmt: skip
    write_parquet([row], target)
    before = target.read_bytes()

    def crash(table, where, *args, **kwargs):
        with open(where, "wb") as out:
            out.write(b"PAR1 half a file")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        write_parquet([row, row], target)
    assert target.read_bytes() == before
    assert os.listdir(target.parent) == ["train.parquet"]  # the temporary file is gone
    assert pq.read_table(target).num_rows == 1


def test_outputs_are_byte_identical_across_runs(tmp_path, dataset_fixtures):
    for run in ("a", "b"):
        prepare(get_spec("gpqa_diamond"), dataset_fixtures / "gpqa_diamond.csv", tmp_path / run)
    first = (tmp_path / "a" / "gpqa_diamond" / "test.parquet").read_bytes()
    assert first == (tmp_path / "b" / "gpqa_diamond" / "test.parquet").read_bytes()


def test_gpqa_csv_with_an_empty_cell(tmp_path, dataset_fixtures, capsys, read_parquet):
    import csv

    with open(dataset_fixtures / "gpqa_diamond.csv", newline="") as fixture:
        rows = list(csv.DictReader(fixture))
    rows.append({**rows[0], "Incorrect Answer 1": "", "Record ID": "recGAP"})  # an empty cell: a missing value
    source = tmp_path / "gpqa.csv"
    with open(source, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    written = prepare(get_spec("gpqa_diamond"), source, tmp_path / "out", skip_bad_rows=True)
    assert len(read_parquet(written["test"])) == 6
    assert "index=6: empty incorrect answer 1" in capsys.readouterr().err
