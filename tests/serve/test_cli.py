"""``python -m duet_verl.serve``'s flags: bad ones are refused before any model loads, an engine URL that does
not answer is a one-line error, and every flag docs/serving.md names exists."""

import re
from pathlib import Path

import pytest

from duet_verl.cli import UsageError
from duet_verl.serve.__main__ import build_parser, check_args, main

ROOT = Path(__file__).resolve().parents[2]


def args(*flags: str):
    return build_parser().parse_args(["--large", "http://127.0.0.1:1", "--small", "http://127.0.0.1:1", *flags])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--small-max-tokens", "0"], "error: argument --small-max-tokens: 0 is not a whole number ≥ 1"),
        (["--max-batch", "0"], "error: argument --max-batch: 0 is not a whole number ≥ 1"),
        (["--small-max-prompt-tokens", "0"], "error: argument --small-max-prompt-tokens: 0 is not a whole number ≥ 1"),
        (["--port", "99999"], "error: argument --port: 99999 is not a port (1–65535)"),
        (["--large-temperature", "-1"], "error: argument --large-temperature: -1 is not a number ≥ 0"),
    ],
)
def test_nonsense_values_are_refused_while_parsing_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        args(*flags)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(message) and len(err.splitlines()) == 1, err


def test_models_that_are_not_there_are_refused_before_anything_loads():
    with pytest.raises(UsageError, match=re.escape("M (--large ./no/such/model): no such folder")):
        check_args(args("--large", "./no/such/model"))


def test_a_tokenizer_flag_needs_an_engine_url(tiny_assets):
    with pytest.raises(UsageError, match="--small-tokenizer is for an engine URL"):
        check_args(args("--small", str(tiny_assets["small"]), "--small-tokenizer", str(tiny_assets["tokenizer"])))


def test_a_port_in_use_and_a_missing_vllm_are_one_line_before_any_model_loads(tiny_assets, capsys, monkeypatch):
    import importlib.util
    import socket

    models = ["--large", str(tiny_assets["large"]), "--small", str(tiny_assets["small"])]
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = str(held.getsockname()[1])
        assert main([*models, "--backend", "hf", "--port", taken]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --host 127.0.0.1 --port {taken}: cannot listen there") and len(err.splitlines()) == 1
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    assert main(models) == 2  # the default backend, vllm, on a machine without it
    err = capsys.readouterr().err
    assert err.startswith("error: --backend vllm needs vLLM") and "Traceback" not in err and len(err.splitlines()) == 1


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
