"""The command lines: ``python -m duet_verl.data_prep.<name>`` and ``python -m duet_verl.data_prep.prepare_all``
(the checkout's short names, ``python -m data_prep.<name>``, are in test_prep_checkout_alias.py)."""

import shutil
import subprocess
import sys

from duet_verl.data_prep import DATASETS, prepare_all


def test_module_command_line(tmp_path, dataset_fixtures, read_parquet):
    """Run outside the checkout: the installed package is enough."""
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "duet_verl.data_prep.amc23", "--local-path", str(dataset_fixtures / "amc23.jsonl"),
         "--output-root", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"amc23: test: 6 rows -> {out / 'amc23' / 'test.parquet'}" in result.stdout
    assert len(read_parquet(out / "amc23" / "test.parquet")) == 6


def test_prepare_all_prints_a_summary(prepared_root, dataset_fixtures, tmp_path, capsys):
    assert prepare_all.main(["--local-root", str(dataset_fixtures), "--output-root", str(tmp_path), "--only",
                             "aime24,gsm8k"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"aime24: ok: test -> {tmp_path / 'aime24' / 'test.parquet'}" in out
    assert "gsm8k: ok: train -> " in out and "gsm8k: train: 4 rows" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aime24", "gsm8k"]


def test_prepare_all_goes_on_after_a_failure_and_exits_1(dataset_fixtures, tmp_path, capsys):
    local = tmp_path / "local"
    local.mkdir()
    shutil.copy(dataset_fixtures / "math500.jsonl", local / "math500.jsonl")
    shutil.copytree(dataset_fixtures / "gsm8k", local / "gsm8k")
    status = prepare_all.main(["--local-root", str(local), "--output-root", str(tmp_path / "out"), "--exclude",
                               "deepscaler,dapo_math17k,math_lighteval,aime25,amc23"])  # fmt: skip
    assert status == 1
    captured = capsys.readouterr()
    assert "aime24: FAILED: aime24: --local-root needs exactly one of" in captured.out
    assert "gpqa_diamond: FAILED" in captured.out
    assert "math500: ok" in captured.out and "gsm8k: ok" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gsm8k", "math500"]


def test_prepare_all_rejects_unknown_names():
    import pytest

    with pytest.raises(SystemExit, match="unknown datasets"):
        prepare_all.main(["--only", "math501"])
    assert len(DATASETS) == 9
