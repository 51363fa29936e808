"""Session-scoped offline fixtures shared by the whole suite (built once, in seconds, nothing downloaded)."""

from pathlib import Path

import pytest

from duet_verl.testing import tiny

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory) -> dict[str, Path]:
    """Tokenizer, the "large" (M) and "small" (m) random Qwen3 models and tiny train/test parquet files."""
    return tiny.build_all(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_assets):
    """The shared tiny tokenizer: Qwen3 special tokens and the real Qwen3 chat template."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_assets["tokenizer"]))


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` beside the checkout (real public sample rows); tests needing it skip without it."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"shared fixtures not found at {path}")
    return path


def pytest_configure(config):
    config.duet_wall_times = {}


@pytest.fixture(scope="session")
def record_wall_time(pytestconfig):
    """Record a named wall time; the end-to-end runs' times are printed in the test summary."""

    def record(name: str, seconds: float) -> None:
        pytestconfig.duet_wall_times[name] = seconds

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.duet_wall_times:
        terminalreporter.section("CPU end-to-end wall times")
        for name, seconds in config.duet_wall_times.items():
            terminalreporter.write_line(f"{name}: {seconds:.1f} s")
