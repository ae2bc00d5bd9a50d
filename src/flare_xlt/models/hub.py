"""Whether the Hugging Face Hub can be reached, asked once, before any download is tried.

Without a network, transformers retries a hub id for tens of seconds before it fails.
:func:`hub_options` checks the hub's address once per process (a TCP connection with a
short timeout) and, when it cannot be reached, tells ``from_pretrained`` to use only the
local HF cache, so a missing model fails at once with our one-line error.
"""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlparse

from huggingface_hub import constants as hub_constants

PROBE_TIMEOUT_S = 3.0


def offline_mode() -> bool:
    """HF offline mode, honouring HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE set after import."""
    flags = (os.environ.get(var, "") for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    on = any(flag.strip().lower() in {"1", "true", "yes", "on"} for flag in flags)
    return on or hub_constants.HF_HUB_OFFLINE


def hub_endpoint() -> str:
    """The hub's base URL (``HF_ENDPOINT`` when set)."""
    return os.environ.get("HF_ENDPOINT") or hub_constants.ENDPOINT


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
NEGATIVE_ANSWER_S = 60.0  # an unreachable hub is asked again after this long


_ANSWERS: dict[str, tuple[bool, float]] = {}  # endpoint -> (reachable, when asked)


def _reachable(endpoint: str) -> bool:
    """Whether the endpoint answers; a positive answer is kept, a negative one for a minute
    (a network blip must not switch a long grid offline)."""
    answer, asked = _ANSWERS.get(endpoint, (False, -NEGATIVE_ANSWER_S))
    if answer or time.monotonic() - asked < NEGATIVE_ANSWER_S:
        return answer
    _ANSWERS[endpoint] = (_probe(endpoint), time.monotonic())
    return _ANSWERS[endpoint][0]


def _probe(endpoint: str) -> bool:
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def hub_reachable() -> bool:
    """Whether a TCP connection to the hub's endpoint opens. Behind a proxy the hub is only
    reached through it, so the direct probe is skipped and the hub taken as reachable."""
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    return _reachable(hub_endpoint())


def hub_options() -> dict:
    """``from_pretrained`` options for a hub id: local files only when offline or unreachable."""
    if offline_mode() or not hub_reachable():
        return {"local_files_only": True}
    return {}


def hub_state() -> str:
    """Why the hub was not used, for error messages ('' when it was reachable)."""
    if offline_mode():
        return " (HF_HUB_OFFLINE is set)"
    if not hub_reachable():
        return (
            f" (the hub at {hub_endpoint()} cannot be reached, so only the local HF cache was read)"
        )
    return ""
