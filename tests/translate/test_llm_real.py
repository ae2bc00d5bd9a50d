"""The LLM backend with the real built-in Gemma-3-270M (converted once, see ``real_flare_home``)."""

import pytest

from flare_xlt.models import get_builtin
from flare_xlt.translate import HFCausalLMTranslator

pytestmark = pytest.mark.real_model


def test_gemma_translates_each_sentence_into_one_line(real_flare_home):
    if not get_builtin("gemma-3-270m").installed:
        pytest.skip("gemma-3-270m needs the offline-models extra")
    translator = HFCausalLMTranslator.from_pretrained("gemma-3-270m", max_new_tokens=24)
    assert translator.revision.startswith("builtin-")
    texts = ["The food was delicious.", "I like this city."]
    translations = translator.translate(texts, "en", "ind")
    assert len(translations) == 2
    assert all(text.strip() and "\n" not in text for text in translations), translations
