"""Language codes -> model language tokens, with explicit fallbacks."""

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.translate.base import ModelLanguage
from flare_xlt.translate.codes import detect_scheme, model_language

NLLB = {"eng_Latn", "swh_Latn", "ind_Latn", "jav_Latn"}
M2M = {"__en__", "__sw__", "__id__", "__jv__", "__ast__"}


def test_detect_scheme():
    assert detect_scheme(NLLB) == "flores200"
    assert detect_scheme(M2M) == "m2m100"
    assert detect_scheme({"hello", "</s>"}) == "none"


@pytest.mark.parametrize("code", ["sw", "swh", "swa", "Swahili", "swh_Latn"])
def test_nllb_codes(code):
    assert model_language(code, "flores200", NLLB) == ModelLanguage(code, "swh", "swh_Latn")


@pytest.mark.parametrize("code", ["sw", "swahili"])
def test_m2m100_codes(code):
    assert model_language(code, "m2m100", M2M) == ModelLanguage(code, "swh", "__sw__")


def test_marian_has_no_tokens():
    assert model_language("de", "none", set()) == ModelLanguage("de", "deu", None)


def test_missing_nllb_language_needs_explicit_fallback():
    with pytest.raises(FlareError, match="FLORES"):
        model_language("bbc", "flores200", NLLB)
    resolved = model_language("bbc", "flores200", NLLB, fallback="id")
    assert resolved == ModelLanguage("bbc", "ind", "ind_Latn", fallback_used=True)
    assert resolved.cache_code == "ind_Latn"


def test_missing_m2m100_language_needs_explicit_fallback():
    with pytest.raises(FlareError, match="no language token for Balinese"):
        model_language("ban", "m2m100", M2M)
    resolved = model_language("ban", "m2m100", M2M, fallback="jv")
    assert resolved == ModelLanguage("ban", "jav", "__jv__", fallback_used=True)


def test_fallback_is_not_used_when_the_model_has_the_language():
    assert not model_language("sw", "flores200", NLLB, fallback="id").fallback_used


def test_unknown_codes_and_tokens_are_errors():
    with pytest.raises(FlareError, match="unknown language"):
        model_language("klingon", "m2m100", M2M)
    with pytest.raises(FlareError, match="no language token 'fin_Latn'"):
        model_language("fi", "flores200", NLLB)
    with pytest.raises(FlareError, match="unknown language scheme"):
        model_language("sw", "fairseq", M2M)
