"""The small JSON records flare-xlt saves beside weights: reading and comparing them."""

from __future__ import annotations

import json
from pathlib import Path

from flare_xlt.errors import FlareError


def read_json_object(path: Path) -> dict:
    """The JSON object saved in ``path``; a one-line :class:`FlareError` naming it if malformed."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise FlareError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise FlareError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def differing_keys(saved: dict, current: dict) -> list[str]:
    """The top-level keys whose values differ between a saved record and the current one."""
    return sorted(k for k in {*saved, *current} if saved.get(k) != current.get(k))
