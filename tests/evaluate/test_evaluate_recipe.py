"""recipes/eval_duet_qwen3.sh hands the CLI base M and trained M (run with a stand-in ``python``)."""

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "eval_duet_qwen3.sh"


def cli_args(tmp_path, **env) -> list[str]:
    """The arguments the recipe passes to ``python``, one per line."""
    bin_dir, data = tmp_path / "bin", tmp_path / "data"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "{tmp_path}/args"\n')
    (bin_dir / "python").chmod(0o755)
    for name in ("math500", "aime24"):
        (data / name).mkdir(parents=True)
        (data / name / "test.parquet").touch()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DATA_DIR": str(data),
           "BENCHMARKS": "math500 aime24", **env}  # fmt: skip
    subprocess.run(["bash", str(RECIPE)], env=env, check=True, timeout=30, capture_output=True)
    return (tmp_path / "args").read_text().splitlines()


def value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("env", "large", "base"),
    [
        ({}, "Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),  # base models only: one M, shared by large and duet
        ({"LARGE": "ckpt/M_hf"}, "ckpt/M_hf", "Qwen/Qwen3-8B"),  # trained pair against base M alone
        ({"LARGE": "ckpt/M_hf", "BASE_LARGE": "Qwen/Qwen3-4B"}, "ckpt/M_hf", "Qwen/Qwen3-4B"),
    ],
)
def test_recipe_passes_base_and_trained_m(tmp_path, env, large, base):
    args = cli_args(tmp_path, **env)
    assert args[:2] == ["-m", "duet_verl.evaluate"]
    assert [value(args, flag) for flag in ("--large", "--base-large", "--small")] == [large, base, "Qwen/Qwen3-0.6B"]
    assert args[args.index("--modes") + 1 : args.index("--out")] == ["duet", "large", "small", "concise"]


def test_m_reads_the_question_as_prompted_as_the_authors_m(tmp_path):
    """The paper's tables: the authors' m reads AIME, AMC and MATH questions with their answer instruction."""
    assert value(cli_args(tmp_path), "--small-question") == "as_prompted"
