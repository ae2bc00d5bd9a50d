"""The small JSON records flare-xlt saves beside weights: reading and comparing them."""

from __future__ import annotations

import json
from pathlib import Path

from flare_xlt.errors import FlareError


def read_json_object(path: Path) -> dict:
    """The JSON object saved in ``path``; a one-line :class:`FlareError` naming it if malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise FlareError(f"{path} is not valid UTF-8 JSON: {err}") from None
    except json.JSONDecodeError as err:
        raise FlareError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise FlareError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


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
