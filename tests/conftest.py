"""Session-scoped offline fixtures shared by the whole suite (built once, in seconds, nothing downloaded)."""

from pathlib import Path

import pytest

from duet_verl.worlds import tiny

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASET_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "datasets"


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
def llama_assets(tmp_path_factory) -> dict[str, Path]:
    """The second family: a Llama-style tokenizer (other vocabulary, special thinking tags, its own chat template)
    and tiny random Llama models "llama_large" and "llama_small", for heterogeneous pairs."""
    return tiny.build_llama_pair(tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="session")
def dataset_fixtures() -> Path:
    """``tests/fixtures/datasets``: laid out as a ``--local-root`` (variants of some layouts under ``variants/``)."""
    return DATASET_FIXTURES


@pytest.fixture(scope="session")
def prepared_root(tmp_path_factory) -> Path:
    """Every dataset prepared once from the fixtures with ``prepare_all`` (as a user on an offline cluster would):
    ``<root>/<name>/<split>.parquet`` with the ``data_source`` names the recipes train and validate on."""
    from duet_verl.data_prep import prepare_all

    root = tmp_path_factory.mktemp("prepared")
    assert prepare_all.main(["--local-root", str(DATASET_FIXTURES), "--output-root", str(root)]) == 0
    return root


@pytest.fixture(scope="session")
def paper_data_overrides(prepared_root) -> list[str]:
    """Hydra overrides for an end-to-end run on rows as ``data_prep`` writes them and no shaped reward, so the DUET
    scorer decides, as in the paper recipes: train on ``deepscaler`` + ``gpqa_diamond``, validate on ``math500`` +
    ``gpqa_diamond``."""
    train = [prepared_root / "deepscaler" / "train.parquet", prepared_root / "gpqa_diamond" / "test.parquet"]
    val = [prepared_root / "math500" / "test.parquet", prepared_root / "gpqa_diamond" / "test.parquet"]
    return [
        "reward.custom_reward_function.path=null",
        f"data.train_files=[{','.join(map(str, train))}]",
        f"data.val_files=[{','.join(map(str, val))}]",
        "data.max_prompt_length=256",  # real questions: up to ~250 tiny-tokenizer tokens once overlong ones are dropped
        "data.filter_overlong_prompts=True",
    ]


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


@pytest.fixture(scope="session")
def gpu_shape_places(tiny_assets, prepared_root) -> dict[str, str]:
    """What the GPU recipes' shape on CPU (``duet_verl.testing.gpu_shape``) reads: the tiny models and the prepared
    rows, with the pooled training set the recipe's ``TRAIN_DATA=gpu_shape`` names."""
    from duet_verl.testing import gpu_shape

    gpu_shape.pool_training_rows(prepared_root)
    return {"<tiny>": str(tiny_assets["tokenizer"].parent), "<prepared>": str(prepared_root)}


@pytest.fixture(scope="session")
def lock_constraints():
    """``docker/lock_constraints.py``, which reads the lock files (``pins``) for the docker build and the tests."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docker" / "lock_constraints.py"
    spec = importlib.util.spec_from_file_location("lock_constraints", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def wheel_python(tmp_path_factory) -> Path:
    """The ``python`` of a scratch virtualenv with duet-verl installed from its wheel (built from this checkout's
    files) and the test environment's other packages (``duet_verl.testing.wheel``); run it outside the checkout."""
    from duet_verl.testing import wheel

    out = tmp_path_factory.mktemp("wheel")
    return wheel.wheel_python(wheel.build_wheel(Path(__file__).resolve().parents[1], out), out)
