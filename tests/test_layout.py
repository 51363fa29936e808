"""The house's layout: moved modules name their new home, and no module name repeats where it would confuse."""

import importlib
from pathlib import Path

import pytest

from duet_verl.testing import MOVED

ROOT = Path(__file__).resolve().parents[1]

# Same file name in two packages, each on purpose.
REPEATED = {
    "main.py": "duet_verl.main is the alias users type for the entry, duet_verl.train.main",
    "backends.py": "duet_verl.evaluate.backends is the generators' old import path, kept with a FutureWarning",
    "engines.py": "the CPU backend's FSDP engines and the server's generation engines",
    "records.py": "the answer-record schema (core) and a training step's records (train)",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_module_names_its_new_home(old):
    importlib.import_module(MOVED[old])
    with pytest.raises(ModuleNotFoundError, match=f"duet_verl.testing.{old} moved: use {MOVED[old]}$"):
        importlib.import_module(f"duet_verl.testing.{old}")


def test_a_missing_harness_module_is_a_plain_import_error():
    with pytest.raises(ModuleNotFoundError) as raised:
        importlib.import_module("duet_verl.testing.no_such_module")
    assert "moved" not in str(raised.value)


def names(folder: str) -> list[str]:
    return [p.name for p in (ROOT / folder).rglob("*.py") if p.name not in {"__init__.py", "__main__.py"}]


def test_no_benchmark_shares_a_name_with_a_module():
    assert set(names("benchmarks")) & set(names("duet_verl")) == set()


def test_the_package_repeats_a_file_name_only_on_purpose():
    package = names("duet_verl")
    assert {name for name in package if package.count(name) > 1} == set(REPEATED)
