"""The language registry: one :class:`Language` per supported language, and code lookup.

Users name languages in many ways: ISO 639-1 (``sw``), ISO 639-3 (``swh``, or
the macrolanguage ``swa``), the dataset folder names of NusaX (``toba_batak``)
and TyDiQA (``swahili``), English names, or FLORES-200 codes (``swh_Latn``).
:func:`resolve_language` maps all of them, case-insensitively, to one
:class:`Language`; the rest of the package identifies a language by its
``iso639_3`` code.

:func:`flores_code` gives the FLORES-200 code that NLLB uses. Toba Batak (bbc),
Madurese (mad) and Ngaju (nij) have none; the reference code silently
translated them as Indonesian, here a fallback must be asked for explicitly and
is recorded in the result.

A user's own data may be in a language the registry does not list:
:func:`language_code` accepts any well-formed code for it (ISO 639-3 ``quy``,
ISO 639-1 ``gn``, or a ``code_Script`` tag such as ``quy_Latn``) and keeps it
as given, with a note logged once per code.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from dataclasses import dataclass

from flare_xlt.errors import FlareError

_FLORES_PATTERN = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
# Codes accepted for languages outside the registry: ISO 639-1, ISO 639-3, code_Script.
_UNLISTED_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Z][a-z]{3})?$")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Language:
    """One language and its codes in the standards and datasets the package reads.

    Attributes:
        iso639_3: ISO 639-3 code, the package's canonical identifier (``"jav"``).
        name: English name (``"Javanese"``).
        iso639_1: two-letter ISO 639-1 code, or None where the language has none.
        flores200: FLORES-200 / NLLB code (``"jav_Latn"``), or None where NLLB lacks it.
        nusax_name: folder name in NusaX (``"javanese"``), or None.
        tydiqa_name: language name in TyDiQA file names and ids (``"swahili"``), or None.
        aliases: further accepted codes (macrolanguage and ISO 639-2/B codes, other names).
    """

    iso639_3: str
    name: str
    iso639_1: str | None
    flores200: str | None
    nusax_name: str | None = None
    tydiqa_name: str | None = None
    aliases: tuple[str, ...] = ()

    def codes(self) -> tuple[str, ...]:
        """Every code :func:`resolve_language` accepts for this language (normalised)."""
        raw = (
            self.iso639_3,
            self.name,
            self.iso639_1,
            self.flores200,
            self.nusax_name,
            self.tydiqa_name,
            *self.aliases,
        )
        return tuple(dict.fromkeys(_normalise(code) for code in raw if code))


_L = Language
LANGUAGES: tuple[Language, ...] = (
    # English, Indonesian and the NusaX local languages.
    _L("eng", "English", "en", "eng_Latn", "english", "english"),
    _L("ind", "Indonesian", "id", "ind_Latn", "indonesian", "indonesian"),
    _L("ace", "Acehnese", None, "ace_Latn", "acehnese", aliases=("achinese",)),
    _L("ban", "Balinese", None, "ban_Latn", "balinese"),
    _L("bjn", "Banjarese", None, "bjn_Latn", "banjarese", aliases=("banjar",)),
    _L("bug", "Buginese", None, "bug_Latn", "buginese"),
    _L("jav", "Javanese", "jv", "jav_Latn", "javanese"),
    _L("mad", "Madurese", None, None, "madurese"),
    _L("min", "Minangkabau", None, "min_Latn", "minangkabau"),
    _L("nij", "Ngaju", None, None, "ngaju", aliases=("ngaju_dayak",)),
    _L("sun", "Sundanese", "su", "sun_Latn", "sundanese"),
    _L("bbc", "Toba Batak", None, None, "toba_batak", aliases=("batak_toba",)),
    # XNLI (with myXNLI's Burmese), TyDiQA and XQuAD languages.
    _L("arb", "Arabic", "ar", "arb_Arab", tydiqa_name="arabic", aliases=("ara",)),
    _L("ben", "Bengali", "bn", "ben_Beng", tydiqa_name="bengali", aliases=("bangla",)),
    _L("bul", "Bulgarian", "bg", "bul_Cyrl"),
    _L("deu", "German", "de", "deu_Latn", aliases=("ger",)),
    _L("ell", "Greek", "el", "ell_Grek", aliases=("gre",)),
    _L("fin", "Finnish", "fi", "fin_Latn", tydiqa_name="finnish"),
    _L("fra", "French", "fr", "fra_Latn", aliases=("fre",)),
    _L("hin", "Hindi", "hi", "hin_Deva"),
    _L("kor", "Korean", "ko", "kor_Hang", tydiqa_name="korean"),
    _L("mya", "Burmese", "my", "mya_Mymr", aliases=("bur", "myanmar")),
    _L("ron", "Romanian", "ro", "ron_Latn", aliases=("rum",)),
    _L("rus", "Russian", "ru", "rus_Cyrl", tydiqa_name="russian"),
    _L("spa", "Spanish", "es", "spa_Latn"),
    _L("swh", "Swahili", "sw", "swh_Latn", tydiqa_name="swahili", aliases=("swa",)),
    _L("tel", "Telugu", "te", "tel_Telu", tydiqa_name="telugu"),
    _L("tha", "Thai", "th", "tha_Thai"),
    _L("tur", "Turkish", "tr", "tur_Latn"),
    _L("urd", "Urdu", "ur", "urd_Arab"),
    _L("vie", "Vietnamese", "vi", "vie_Latn"),
    _L("zho", "Chinese", "zh", "zho_Hans", aliases=("chi", "cmn", "mandarin")),
    # Further Tatoeba languages in the shared data.
    _L("amh", "Amharic", "am", "amh_Ethi"),
    _L("mar", "Marathi", "mr", "mar_Deva"),
    _L("tam", "Tamil", "ta", "tam_Taml"),
    _L("tgl", "Tagalog", "tl", "tgl_Latn", aliases=("fil", "filipino")),
    _L("zsm", "Malay", "ms", "zsm_Latn", aliases=("msa", "may")),
)
del _L


def _normalise(code: str) -> str:
    return code.strip().lower().replace("-", "_").replace(" ", "_")


def _build_index(languages: tuple[Language, ...]) -> dict[str, Language]:
    index: dict[str, Language] = {}
    for language in languages:
        for code in language.codes():
            other = index.setdefault(code, language)
            if other is not language:
                raise RuntimeError(f"code {code!r} names both {other.name} and {language.name}")
    return index


_INDEX = _build_index(LANGUAGES)


def resolve_language(code: str) -> Language:
    """The :class:`Language` a code names, case-insensitively.

    Accepts ISO 639-1/639-3 codes, NusaX and TyDiQA names, English names and
    FLORES-200 codes. Raises :class:`FlareError` with close matches otherwise.
    """
    key = _normalise(code) if isinstance(code, str) else ""
    if key in _INDEX:
        return _INDEX[key]
    close = _close_codes(key)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    known = ", ".join(language.iso639_3 for language in LANGUAGES)
    raise FlareError(f"unknown language {code!r}{hint} (known ISO 639-3 codes: {known})")


def _close_codes(key: str) -> list[str]:
    """Registry codes that look like ``key`` (a normalised code), closest first."""
    return difflib.get_close_matches(key, _INDEX, n=5, cutoff=0.6)


def language_code(code: str) -> str:
    """The identifier of a target language of a user's own data.

    A registry language gives its ISO 639-3 code (``javanese`` -> ``jav``). Any other
    ISO 639-3 code (three lowercase letters, ``quy``), ISO 639-1 code (``gn``) or
    ``code_Script`` tag (``quy_Latn``) is kept as given, and a note says so once.
    Anything else raises :class:`FlareError`.
    """
    try:
        return resolve_language(code).iso639_3
    except FlareError:
        tag = code.strip() if isinstance(code, str) else ""
        if not _UNLISTED_PATTERN.match(tag):
            close = _close_codes(_normalise(tag))
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise FlareError(
                f"unknown language {code!r}: not in the registry{hint}, and not an ISO 639-3 "
                "code (three lowercase letters, e.g. quy), an ISO 639-1 code (e.g. gn) or a "
                "code_Script tag (e.g. quy_Latn)"
            ) from None
    _note_unlisted(tag)
    return tag


@functools.cache
def _note_unlisted(code: str) -> None:
    """Log, once per code and process, that ``code`` is used as given."""
    logger.info("note: language %r is not in the registry; used as given", code)


@dataclass(frozen=True)
class FloresResolution:
    """The FLORES-200 code used for a requested language.

    Attributes:
        code: the FLORES-200 code to feed NLLB.
        fallback_used: True when ``code`` is the caller's fallback, because the
            requested language has no FLORES-200 code.
        requested: the language that was asked for.
    """

    code: str
    fallback_used: bool
    requested: Language


def flores_code(code: str, fallback: str | None = None) -> FloresResolution:
    """The FLORES-200 (NLLB) code of a language, or an explicit fallback where it has none.

    ``fallback`` is used only when the language has no FLORES-200 code; it may be
    any code :func:`resolve_language` accepts (``"id"``) or a raw FLORES-200
    code (``"ind_Latn"``). Without a fallback such languages raise
    :class:`FlareError`.
    """
    language = resolve_language(code)
    if language.flores200 is not None:
        return FloresResolution(language.flores200, fallback_used=False, requested=language)
    if fallback is None:
        raise FlareError(
            f"{language.name} ({language.iso639_3}) has no FLORES-200/NLLB code; "
            "pass an explicit fallback, e.g. fallback='ind_Latn'"
        )
    return FloresResolution(_fallback_code(fallback), fallback_used=True, requested=language)


def _fallback_code(fallback: str) -> str:
    key = _normalise(fallback)
    if key in _INDEX and _INDEX[key].flores200 is not None:
        return _INDEX[key].flores200
    if _FLORES_PATTERN.match(fallback.strip()):
        return fallback.strip()
    raise FlareError(
        f"fallback {fallback!r} is neither a language with a FLORES-200 code "
        "nor a FLORES-200 code such as 'ind_Latn'"
    )
