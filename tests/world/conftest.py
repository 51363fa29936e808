"""A built learning world (tokenizer, RL rows, SFT sets), shared by the world tests (about 3 s to build)."""

import pytest

from duet_verl.worlds import learning as world


@pytest.fixture(scope="session")
def built_world(tmp_path_factory) -> dict:
    return world.build_world(tmp_path_factory.mktemp("world"), seed=3)


@pytest.fixture(scope="session")
def world_tokenizer(built_world):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(built_world["tokenizer"]))
