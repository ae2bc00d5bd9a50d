"""Mapping user language codes to the language tokens of multilingual MT models.

Three conventions ("schemes") cover the seq2seq MT models on the Hugging Face hub:

* ``"flores200"``: NLLB-200. Tokens are FLORES-200 codes (``eng_Latn``,
  ``swh_Latn``). Languages NLLB lacks (bbc, mad, nij) need an explicit fallback.
* ``"m2m100"``: M2M100. Tokens are ``__xx__`` with ISO 639-1 codes where the
  language has one (``__en__``, ``__sw__``), else ISO 639-3 (``__ast__``).
* ``"none"``: Marian (opus-mt) and other one-pair models; no language tokens.

The scheme is read off the tokenizer's vocabulary, so any tokenizer that
follows a convention works (including one built with ``tokenizers`` only; the
sentencepiece-based ``M2M100Tokenizer`` is not required).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace

from flare_xlt.errors import FlareError
from flare_xlt.languages import Language, flores_code, resolve_language
from flare_xlt.translate.base import ModelLanguage

SCHEMES = ("flores200", "m2m100", "none")


def detect_scheme(vocab: Container[str]) -> str:
    """The language-token scheme of a vocabulary: ``flores200``, ``m2m100`` or ``none``."""
    if "eng_Latn" in vocab:
        return "flores200"
    if "__en__" in vocab:
        return "m2m100"
    return "none"


def model_language(
    code: str, scheme: str, vocab: Container[str], fallback: str | None = None
) -> ModelLanguage:
    """Resolve a user language code to the token a model with ``scheme`` expects.

    ``fallback`` (any language code, or a FLORES-200 code for NLLB) is used
    only when the model has no token for ``code``; the result says so.

    Raises:
        FlareError: unknown language, or no token for it (and no usable fallback).
    """
    if scheme not in SCHEMES:
        raise FlareError(f"unknown language scheme {scheme!r}; expected one of {SCHEMES}")
    if scheme == "flores200":
        resolution = flores_code(code, fallback)
        token = resolution.code
        _require_token(token, vocab, code)
        iso = _flores_language(token)
        return ModelLanguage(code, iso, token, fallback_used=resolution.fallback_used)
    language = resolve_language(code)
    if scheme == "none":
        return ModelLanguage(code, language.iso639_3, None)
    token = _m2m100_token(language, vocab)
    if token is not None:
        return ModelLanguage(code, language.iso639_3, token)
    tried = ", ".join(_m2m100_candidates(language))
    if fallback is None:
        raise FlareError(
            f"the translation model has no language token for {language.name} "
            f"({language.iso639_3}; tried {tried}); pass a fallback language explicitly"
        )
    substitute = model_language(fallback, scheme, vocab)
    return replace(substitute, requested=code, fallback_used=True)


def _m2m100_candidates(language: Language) -> list[str]:
    codes = [language.iso639_1, language.iso639_3]
    return [f"__{c}__" for c in dict.fromkeys(codes) if c]


def _m2m100_token(language: Language, vocab: Container[str]) -> str | None:
    return next((t for t in _m2m100_candidates(language) if t in vocab), None)


def _require_token(token: str, vocab: Container[str], code: str) -> None:
    if token not in vocab:
        raise FlareError(f"the translation model has no language token {token!r} (for {code!r})")


def _flores_language(token: str) -> str:
    """ISO 639-3 code of a FLORES-200 code, known to the registry or not."""
    try:
        return resolve_language(token).iso639_3
    except FlareError:
        return token.split("_")[0]
