"""The checkout's short names: ``data_prep.<name>`` is ``duet_verl.data_prep.<name>`` (data_prep/__init__.py), and
the installed package ships only ``duet_verl``."""

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import duet_verl.data_prep
import duet_verl.data_prep.common

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["data_prep.gsm8k", "data_prep.prepare_all", "duet_verl.data_prep.prepare_all"])
def test_python_m_runs_the_module_as_main_from_the_checkout(module):
    result = run(["-m", module, "--help"], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    # the usage line comes from main(), which only the module's `if __name__ == "__main__"` calls
    assert result.stdout.startswith(f"usage: python -m duet_verl.{module.removeprefix('duet_verl.')} ")


def test_the_short_name_is_the_same_module():
    from data_prep.common import math_prompt

    assert math_prompt is duet_verl.data_prep.common.math_prompt
    assert importlib.import_module("data_prep.common") is duet_verl.data_prep.common
    from data_prep import DATASETS, get_spec, gsm8k

    assert gsm8k is importlib.import_module("duet_verl.data_prep.gsm8k")
    assert (DATASETS, get_spec) == (duet_verl.data_prep.DATASETS, duet_verl.data_prep.get_spec)


def test_an_unknown_short_name_is_a_plain_import_error():
    with pytest.raises(ModuleNotFoundError, match=r"^No module named 'data_prep.no_such_dataset'$"):
        importlib.import_module("data_prep.no_such_dataset")


def test_outside_the_checkout_there_is_no_top_level_data_prep(tmp_path):
    result = run(["-c", "import importlib.util; print(importlib.util.find_spec('data_prep'))"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_the_package_does_not_import_the_checkout_alias():
    importing = re.compile(r"^\s*(from|import)\s+data_prep\b", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "duet_verl").rglob("*.py")
        if importing.search(path.read_text()) or 'import_module("data_prep' in path.read_text()
    ]
    assert offenders == []
