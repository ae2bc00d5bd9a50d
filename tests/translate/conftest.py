"""Translation tests run the tiny model on one thread (restored afterwards).

The tiny M2M100 does microseconds of work per op; with several intra-op
threads on a busy 2-core machine, thread contention made generation ~20x slower.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
