"""Architecture tests run single-threaded: on a shared 2-core machine, two OpenMP threads that
wait for each other make a small forward pass 10-50x slower than one thread."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
