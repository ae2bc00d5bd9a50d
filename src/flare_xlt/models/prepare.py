"""Convert a built-in model once into the cache, and verify a cached conversion."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from flare_xlt.models import cache
from flare_xlt.models.registry import get_builtin


def prepare_model(name: str, progress: bool = True, verify: bool = True) -> Path:
    """Return the HF directory of built-in model ``name``, converting it on first use.

    The conversion runs once into ``flare_home()/models/<name>/`` (atomically, under a
    file lock) and is reused afterwards. With ``verify`` the cached files are checked
    against the sha256 in their manifest (about 1 s per GB); without it only package
    versions and file sizes are (what :func:`~flare_xlt.models.load_backbone` does).
    A cache that fails the check is rebuilt.
    """
    model = get_builtin(name)
    build = partial(model.convert, progress=progress)
    return cache.build_dir(model.cache_dir, name, model.versions(), build, full_check=verify)


def verify_model(name: str) -> str | None:
    """Why the cached conversion of ``name`` is unusable (full sha256 check); None if it is fine."""
    model = get_builtin(name)
    return cache.check_dir(model.cache_dir, name, model.versions(), full=True)
