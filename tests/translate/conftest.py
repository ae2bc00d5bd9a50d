"""Translation tests run the tiny model on one thread (restored afterwards).

The tiny M2M100 does microseconds of work per op; with several intra-op
threads on a busy 2-core machine, thread contention made generation ~20x slower.
"""

import pytest


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every translation test: see ``one_torch_thread`` in tests/conftest.py."""
