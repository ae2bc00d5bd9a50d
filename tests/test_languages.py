"""The language registry: code resolution, codes outside the registry, FLORES-200 codes."""

from __future__ import annotations

import logging

import pytest

from flare_xlt import languages
from flare_xlt.errors import FlareError
from flare_xlt.languages import (
    LANGUAGES,
    FloresResolution,
    flores_code,
    language_code,
    resolve_language,
)

NUSAX_TARGETS = ("ace", "ban", "bjn", "bug", "jav", "mad", "min", "nij", "sun", "bbc", "ind")
XNLI = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
TYDIQA = ("ar", "bn", "fi", "id", "ko", "ru", "sw", "te", "en")
XQUAD = ("ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh", "en")


@pytest.mark.parametrize(
    ("code", "iso639_3"),
    [
        ("sw", "swh"),
        ("SWH", "swh"),
        ("swa", "swh"),
        ("Swahili", "swh"),
        ("swh_Latn", "swh"),
        ("jav", "jav"),
        ("javanese", "jav"),
        ("jv", "jav"),
        ("toba_batak", "bbc"),
        ("Toba Batak", "bbc"),
        ("toba-batak", "bbc"),
        ("ngaju", "nij"),
        ("bengali", "ben"),
        ("ara", "arb"),
        ("zh", "zho"),
        ("cmn", "zho"),
        ("my", "mya"),
        ("  ur ", "urd"),
        ("indonesian", "ind"),
    ],
)
def test_resolve_accepts_every_kind_of_code(code, iso639_3):
    assert resolve_language(code).iso639_3 == iso639_3


def test_required_languages_are_covered():
    for code in (*NUSAX_TARGETS, *XNLI, *TYDIQA, *XQUAD, "my", "eng"):
        resolve_language(code)
    nusax_names = {lang.nusax_name for lang in LANGUAGES if lang.nusax_name}
    assert len(nusax_names) == 12  # 11 targets + English
    assert {lang.tydiqa_name for lang in LANGUAGES if lang.tydiqa_name} == {
        "arabic",
        "bengali",
        "english",
        "finnish",
        "indonesian",
        "korean",
        "russian",
        "swahili",
        "telugu",
    }


def test_every_code_of_every_language_resolves_to_it():
    for language in LANGUAGES:
        for code in language.codes():
            assert resolve_language(code.upper()) is language


def test_unknown_language_lists_close_matches():
    with pytest.raises(FlareError, match="javanese"):
        resolve_language("javanes")
    with pytest.raises(FlareError, match="unknown language 'xx'"):
        resolve_language("xx")


@pytest.mark.parametrize(
    ("code", "flores"),
    [
        ("jav", "jav_Latn"),
        ("sun", "sun_Latn"),
        ("ace", "ace_Latn"),
        ("ban", "ban_Latn"),
        ("bjn", "bjn_Latn"),
        ("bug", "bug_Latn"),
        ("min", "min_Latn"),
        ("id", "ind_Latn"),
        ("en", "eng_Latn"),
        ("sw", "swh_Latn"),
        ("ur", "urd_Arab"),
        ("my", "mya_Mymr"),
        ("ar", "arb_Arab"),
        ("bn", "ben_Beng"),
        ("fi", "fin_Latn"),
        ("ko", "kor_Hang"),
        ("ru", "rus_Cyrl"),
        ("te", "tel_Telu"),
        ("zh", "zho_Hans"),
        ("ro", "ron_Latn"),
    ],
)
def test_flores_codes(code, flores):
    result = flores_code(code, fallback="ind_Latn")
    assert result == FloresResolution(flores, fallback_used=False, requested=resolve_language(code))


def test_flores_codes_are_wellformed_nllb_codes():
    nllb = pytest.importorskip("transformers.models.nllb.tokenization_nllb")
    for language in LANGUAGES:
        if language.flores200:
            assert language.flores200 in nllb.FAIRSEQ_LANGUAGE_CODES


@pytest.mark.parametrize("code", ["bbc", "mad", "nij", "toba_batak"])
def test_languages_without_flores_code_need_an_explicit_fallback(code):
    with pytest.raises(FlareError, match=r"no FLORES-200/NLLB code.*fallback=.ind_Latn."):
        flores_code(code)
    result = flores_code(code, fallback="ind_Latn")
    assert result.code == "ind_Latn"
    assert result.fallback_used
    assert result.requested.iso639_3 == resolve_language(code).iso639_3
    assert flores_code(code, fallback="indonesian").code == "ind_Latn"
    assert flores_code(code, fallback="quy_Latn").code == "quy_Latn"


@pytest.mark.parametrize("fallback", ["mad", "Indonesian_Latin", "xyz"])
def test_bad_fallback_is_rejected(fallback):
    with pytest.raises(FlareError, match="fallback"):
        flores_code("bbc", fallback=fallback)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("javanese", "jav"),  # a registry language: its ISO 639-3 code
        ("jav_Latn", "jav"),
        ("quy_Latn", "quy_Latn"),  # outside the registry: used as given
        ("yor_Latn", "yor_Latn"),
        (" quy ", "quy"),
        ("gn", "gn"),
        ("aym", "aym"),
    ],
)
def test_language_code_keeps_wellformed_codes_outside_the_registry(code, expected):
    assert language_code(code) == expected


def test_a_code_outside_the_registry_is_noted_once(caplog):
    languages._note_unlisted.cache_clear()  # as in a fresh process
    with caplog.at_level(logging.INFO, logger="flare_xlt"):
        for _ in range(3):
            language_code("qvi_Latn")
    notes = [r.getMessage() for r in caplog.records]
    assert notes == ["note: language 'qvi_Latn' is not in the registry; used as given"]


@pytest.mark.parametrize("code", ["java nese", "123", "QUY", "quy-latn", "q", "", None])
def test_language_code_refuses_what_is_no_code(code):
    with pytest.raises(FlareError, match=r"not in the registry.*ISO 639-3 code \(three lowercase"):
        language_code(code)


def test_language_code_suggests_close_registry_codes():
    with pytest.raises(FlareError, match=r"did you mean javanese"):
        language_code("java nese")
