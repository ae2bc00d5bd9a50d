"""The :class:`Translator` protocol every translation backend implements.

A translator turns a batch of texts from one language into another. Besides
``translate`` it exposes what determines its output, so that translations can be
cached and their provenance recorded: the model id and revision, the decoding
settings, and how it maps a user's language code to the model's own code
(:meth:`Translator.model_language`, which also says when a fallback language
stood in for one the model lacks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from flare_xlt.errors import FlareError


@dataclass(frozen=True)
class ModelLanguage:
    """How a translator serves one requested language.

    Attributes:
        requested: the code the user passed (``"sw"``, ``"swh"``, ``"bbc"``...).
        iso639_3: the ISO 639-3 code of the language actually translated from/into.
        token: the model's language token (``"swh_Latn"``, ``"__sw__"``), the
            language's English name for a prompted LLM (``"Swahili"``), or ``None``
            for models without language codes (Marian pairs).
        fallback_used: ``True`` when the model has no code for ``requested`` and
            the fallback language was used instead (``iso639_3`` is then the
            fallback's).
    """

    requested: str
    iso639_3: str
    token: str | None
    fallback_used: bool = False

    @property
    def cache_code(self) -> str:
        """The code that identifies this language in cache keys: what the model is fed."""
        return self.token or self.iso639_3


@runtime_checkable
class Translator(Protocol):
    """Translates texts; deterministic for fixed ``model_id``, ``revision`` and ``settings``."""

    @property
    def model_id(self) -> str:
        """Hub id or local path of the model (part of the cache key)."""
        ...

    @property
    def revision(self) -> str:
        """Model revision (commit hash, tag, or a fingerprint of local files)."""
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """Decoding settings that change the output (JSON scalars; part of the cache key)."""
        ...

    def model_language(self, code: str) -> ModelLanguage:
        """Map a user language code to the language the model is actually asked for."""
        ...

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        """Translate ``texts`` from ``src_lang`` to ``tgt_lang``; one output per input, in order."""
        ...


def check_outputs(texts: Sequence[str], outputs: Sequence[str], model_id: str) -> list[str]:
    """Return ``outputs`` as a list after checking there is exactly one string per input.

    Raises:
        FlareError: if the translator dropped or invented outputs.
    """
    if len(outputs) != len(texts) or not all(isinstance(o, str) for o in outputs):
        raise FlareError(
            f"translator {model_id!r} returned {len(outputs)} outputs for {len(texts)} texts"
        )
    return list(outputs)
