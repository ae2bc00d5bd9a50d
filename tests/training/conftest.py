"""Training tests run tiny models on one thread (restored afterwards).

Tiny models train several times faster so on a busy 2-core machine, and the resume
tests compare runs bit for bit with subprocesses that also use one thread.
"""

import pytest


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Every training test: see ``one_torch_thread`` in tests/conftest.py."""
