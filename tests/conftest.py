"""Shared fixtures: the architecture parameter and the real-model cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny_models import ARCHITECTURES


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
