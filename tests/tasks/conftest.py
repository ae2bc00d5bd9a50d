"""Fixtures for the task tests: the shared data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$FLARE_DATA_DIR``, else ``../shared/data`` next to the repository; skip if missing."""
    env = os.environ.get("FLARE_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path
