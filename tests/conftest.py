"""Shared fixtures: the architecture parameter, the real-model cache and one torch thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from tiny_models import ARCHITECTURES


@pytest.fixture
def one_torch_thread():
    """One intra-op thread (restored afterwards), for the folders whose conftest asks for it.

    Tiny models do microseconds of work per op; with several intra-op threads on a busy
    2-core machine, thread contention made them several times (generation ~20x) slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=ARCHITECTURES)
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def real_flare_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """FLARE_HOME for real-model tests: the caller's, else the checkout's pytest cache.

    Either way each built-in model is converted at most once per test run (and reused by
    later runs of the same checkout, unless the pytest cache is disabled).
    """
    if os.environ.get("FLARE_HOME"):
        yield Path(os.environ["FLARE_HOME"])
        return
    cache = getattr(request.config, "cache", None)
    home = cache.mkdir("flare-home") if cache else tmp_path_factory.mktemp("flare-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLARE_HOME", str(home))
        yield home
