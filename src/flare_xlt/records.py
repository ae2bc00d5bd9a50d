"""Comparing the small JSON records flare-xlt saves beside its outputs with the current ones.

Reading them is :func:`flare_xlt.fileio.read_json_object`.
"""

from __future__ import annotations

_MISSING = object()  # a key one record lacks differs even from a None in the other


def differing_keys(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """The keys whose values differ between a saved record and the current one.

    Nested records are compared key by key and named by dotted path (``data.max_length``).
    """
    differ = []
    for key in sorted({*saved, *current}):
        old, new = saved.get(key, _MISSING), current.get(key, _MISSING)
        if isinstance(old, dict) and isinstance(new, dict):
            differ += differing_keys(old, new, f"{prefix}{key}.")
        elif old != new:
            differ.append(f"{prefix}{key}")
    return differ
