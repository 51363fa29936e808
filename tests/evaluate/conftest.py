"""The tiny models run faster on one thread: two threads spin against each other on a busy 2-core CI box."""

import pytest

from duet_verl.worlds import tiny


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="package")
def base_large(tiny_tokenizer, tmp_path_factory):
    """A second tiny M with other random weights: base M, beside the fixtures' "large" as trained M."""
    return tiny.build_model(tmp_path_factory.mktemp("base_large"), tiny_tokenizer, "large", seed=7)
