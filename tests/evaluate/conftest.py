"""The tiny models run faster on one thread: two threads spin against each other on a busy 2-core CI box."""

import pytest


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
