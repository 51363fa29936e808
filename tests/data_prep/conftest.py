"""Fixtures of the data_prep tests (the dataset fixtures and their prepared output are in ``tests/conftest.py``)."""

import json
from pathlib import Path

import pytest


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
