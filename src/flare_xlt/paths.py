"""Where flare-xlt keeps its cache and finds datasets."""

from __future__ import annotations

import os
from pathlib import Path


def flare_home() -> Path:
    """Cache root: ``$FLARE_HOME``, else ``$XDG_CACHE_HOME/flare-xlt`` (``~/.cache/flare-xlt``)."""
    if env := os.environ.get("FLARE_HOME"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "flare-xlt"


def default_data_dir() -> Path | None:
    """Dataset directory: ``$FLARE_DATA_DIR``, else ``../shared/data`` if it exists, else None."""
    if env := os.environ.get("FLARE_DATA_DIR"):
        return Path(env).expanduser()
    candidate = Path.cwd().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None
