"""Fixtures of the data_prep tests: the fixture files in each dataset's real layout and their prepared output."""

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"


@pytest.fixture(scope="session")
def dataset_fixtures() -> Path:
    """``tests/fixtures/datasets``: laid out as a ``--local-root`` (variants of some layouts under ``variants/``)."""
    return FIXTURES


@pytest.fixture(scope="session")
def prepared_root(tmp_path_factory) -> Path:
    """Every dataset prepared once from the fixtures with ``prepare_all`` (as a user on an offline cluster would)."""
    from data_prep import prepare_all

    root = tmp_path_factory.mktemp("prepared")
    assert prepare_all.main(["--local-root", str(FIXTURES), "--output-root", str(root)]) == 0
    return root


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _read_parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.fixture(scope="session")
def write_jsonl():
    """``write_jsonl(path, rows)``: a JSON-lines source file."""
    return _write_jsonl


@pytest.fixture(scope="session")
def read_parquet():
    """``read_parquet(path)``: the rows of a written parquet file as dicts."""
    return _read_parquet
