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
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DATA_ROOT": str(data),
           "BENCHMARKS": "math500,aime24", **env}  # fmt: skip
    subprocess.run(["bash", str(RECIPE)], env=env, check=True, timeout=30, capture_output=True, text=True)
    return (tmp_path / "args").read_text().splitlines()


def value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("env", "large", "base"),
    [
        ({}, "Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),  # base models only: one M, shared by large and duet
        ({"MODEL_LARGE": "ckpt/M_hf"}, "ckpt/M_hf", "Qwen/Qwen3-8B"),  # trained pair against base M alone
        ({"MODEL_LARGE": "ckpt/M_hf", "MODEL_BASE_LARGE": "Qwen/Qwen3-4B"}, "ckpt/M_hf", "Qwen/Qwen3-4B"),
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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LARGE": "ckpt/M_hf"}, "error: LARGE is now MODEL_LARGE"),  # the old names: refused, not ignored
        ({"DATA_DIR": "/data"}, "error: DATA_DIR is now DATA_ROOT"),
        ({"TP": "2"}, "error: TP is now TP_LARGE"),
        ({"BENCHMARKS": "math500 aime24"}, "error: BENCHMARKS is comma-separated (e.g. math500,aime24)"),
        ({"BENCHMARKS": "math500,amc23"}, "--only amc23 --output-root"),  # the command that prepares what is missing
    ],
)
def test_knob_mistakes_are_one_line_naming_the_fix(tmp_path, env, message):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        cli_args(tmp_path, **env)
    assert failed.value.returncode == 2 and message in failed.value.stderr
    assert len(failed.value.stderr.splitlines()) == 1, failed.value.stderr


def test_help_prints_the_knobs_and_runs_nothing(tmp_path):
    out = subprocess.run(["bash", str(RECIPE), "--help"], capture_output=True, text=True, timeout=30, check=True,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})  # fmt: skip
    assert (
        "MODEL_LARGE=Qwen/Qwen3-8B" in out.stdout
        and "BENCHMARKS=math500,aime24,aime25,amc23,gpqa_diamond" in out.stdout
    )
