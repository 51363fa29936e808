"""``python -m duet_verl.serve``'s flags: bad ones are refused before any model loads, an engine URL that does
not answer is a one-line error, and every flag docs/serving.md names exists."""

import re
from pathlib import Path

import pytest

from duet_verl.serve.__main__ import build_parser, check_args, main

ROOT = Path(__file__).resolve().parents[2]


def args(*flags: str):
    return build_parser().parse_args(["--large", "http://127.0.0.1:1", "--small", "http://127.0.0.1:1", *flags])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--small-max-tokens", "0"], "--small-max-tokens must be ≥ 1"),
        (["--max-batch", "0"], "--max-batch must be ≥ 1"),
        (["--small-max-prompt-tokens", "0"], "--small-max-prompt-tokens must be ≥ 1"),
        (["--large", "./no/such/model"], "M (--large ./no/such/model): no such folder"),
    ],
)
def test_bad_flags_are_refused_before_anything_loads(flags, message):
    with pytest.raises(SystemExit, match=re.escape(message)):
        check_args(args(*flags))


def test_a_tokenizer_flag_needs_an_engine_url(tiny_assets):
    with pytest.raises(SystemExit, match="--small-tokenizer is for an engine URL"):
        check_args(args("--small", str(tiny_assets["small"]), "--small-tokenizer", str(tiny_assets["tokenizer"])))


def test_an_engine_that_does_not_answer_is_a_one_line_error(capsys):
    assert main(["--large", "http://127.0.0.1:9", "--small", "http://127.0.0.1:9"]) == 1
    error = capsys.readouterr().err
    assert "no OpenAI-compatible engine answers at http://127.0.0.1:9/v1/models" in error
    assert "Traceback" not in error


def test_every_flag_the_serving_docs_name_exists():
    flags = {option for action in build_parser()._actions for option in action.option_strings}
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z_-]+", (ROOT / "docs" / "serving.md").read_text()))
    others = {
        "--tensor-parallel-size", "--dtype", "--enforce-eager", "--kv-cache-memory-bytes",  # vllm serve's
        "--gpus", "--backend", "--local_dir", "--target_dir",  # docker's, verl.model_merger's
        "--base-large", "--data", "--requests", "--concurrency",  # benchmarks/bench_serve.py's own
    }  # fmt: skip
    assert named - flags - others == set()
    assert {"--large-instruction", "--max-prompt-tokens", "--small-max-tokens"} <= named
