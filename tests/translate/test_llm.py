"""HFCausalLMTranslator on a tiny random Llama (outputs are gibberish, deterministic)."""

import pytest
import torch
from _llm_support import NEWLINE, build_llm_tokenizer, save_tiny_llm, tiny_llm_translator
from _translate_support import save_tiny_model, sentences
from tiny_models import tiny_config
from transformers import BertModel

from flare_xlt.errors import FlareError
from flare_xlt.translate import (
    DEFAULT_PROMPT,
    CachedTranslator,
    HFCausalLMTranslator,
    ModelLanguage,
    TranslationCache,
    Translator,
    detect_backend,
)
from flare_xlt.translate.llm import completion
from flare_xlt.translate.prompt import check_prompt, render_prompt


def record_generate(translator):
    """Record the keyword arguments and output of every ``generate`` call (the real one runs)."""
    calls = []
    real = translator.model.generate

    def generate(**kwargs):
        output = real(**kwargs)
        calls.append({**kwargs, "output": output})
        return output

    translator.model.generate = generate
    return calls


def test_implements_protocol_with_the_backend_and_prompt_in_its_settings():
    translator = tiny_llm_translator()
    assert isinstance(translator, Translator)
    assert translator.settings["backend"] == "llm"
    assert translator.settings["prompt"] == DEFAULT_PROMPT
    assert translator.model_language("toba_batak") == ModelLanguage(
        "toba_batak", "bbc", "Toba Batak"
    )
    with pytest.raises(FlareError, match="unknown language 'klingon'"):
        translator.translate(["the cat"], "en", "klingon")


def test_batched_equals_one_by_one_with_left_padding():
    texts = sentences(9)
    batched = tiny_llm_translator(batch_size=4, max_new_tokens=40)
    calls = record_generate(batched)
    together = batched.translate(texts, "en", "sw")
    assert len(set(together)) >= 3  # distinct outputs, so a mix-up would show
    assert len(calls) == 3
    for call in calls:  # left padding: every row's prompt ends in the last column
        assert bool(call["attention_mask"][:, -1].all())
    assert not bool(calls[0]["attention_mask"][:, 0].all())  # rows of different lengths
    single = tiny_llm_translator(batch_size=1, max_new_tokens=40)
    assert together == [single.translate([text], "en", "sw")[0] for text in texts]


def test_the_prompt_names_the_languages_from_the_registry():
    translator = tiny_llm_translator()
    calls = record_generate(translator)
    translator.translate(["the cat"], "jv", "ind")
    prompt = render_prompt(DEFAULT_PROMPT, "Javanese", "Indonesian", "the cat")
    intro = "Translate the following Javanese text to Indonesian."
    assert prompt == f"{intro}\nJavanese: the cat\nIndonesian:"
    fed = calls[0]["input_ids"][0][calls[0]["attention_mask"][0].bool()].tolist()
    assert fed == translator.tokenizer(prompt)["input_ids"]


def test_max_new_tokens_grows_with_the_input_up_to_the_cap():
    translator = tiny_llm_translator(max_new_tokens=20)
    assert [translator.new_token_limit(n) for n in (1, 5, 6, 100)] == [10, 18, 20, 20]
    calls = record_generate(translator)
    out = translator.translate(["the cat", "the big red cat sat on a mat by the river"], "en", "sw")
    assert calls[0]["max_new_tokens"] == 20
    assert len(out[0].split()) <= translator.new_token_limit(2)  # cut to its own limit


@pytest.mark.parametrize("stop", [NEWLINE, "</s>"])
def test_generation_stops_at_the_first_newline_or_eos(stop):
    translator = tiny_llm_translator(max_new_tokens=30)
    stop_id = translator.tokenizer.convert_tokens_to_ids(stop)
    hidden, vocab = translator.model.config.hidden_size, translator.model.config.vocab_size
    head = torch.nn.Linear(hidden, vocab, bias=True)  # every position predicts `stop`
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(stop_id), vocab).float())
    translator.model.lm_head = head
    calls = record_generate(translator)
    assert translator.translate(["the cat sat .", "a dog"], "en", "sw") == ["", ""]
    prompt_width = calls[0]["input_ids"].shape[1]
    assert calls[0]["output"].shape[1] == prompt_width + 1  # one new token, not 30


def test_a_completion_is_the_text_before_eos_and_the_first_newline():
    tokenizer = build_llm_tokenizer()

    def ids(text):
        return tokenizer(text)["input_ids"]

    eos = tokenizer.eos_token_id
    assert completion(ids("the cat \n the dog"), tokenizer, eos) == "the cat"
    assert completion([*ids("the cat"), eos, *ids("dog")], tokenizer, eos) == "the cat"
    assert completion(ids("\n the dog"), tokenizer, eos) == ""


def test_line_breaks_end_a_piece():
    translator = tiny_llm_translator(max_new_tokens=16)
    lines = ["the cat sat on a mat .", "the dog sat by the river ."]
    joined = translator.translate(["\n".join(lines)], "en", "sw")[0]
    assert joined == " ".join(translator.translate(lines, "en", "sw"))


def test_prompt_templates_are_checked():
    assert check_prompt("{text} -> {target}") == "{text} -> {target}"
    cases = {
        "Translate to {target}:": "no {text} field",
        "{source}: {text}\n{language}:": "the field {language}",
        "{text!r}": "the field {text!r}",
        "{text} {": "Single '{' encountered",
    }
    for template, message in cases.items():
        with pytest.raises(FlareError, match=message) as info:
            tiny_llm_translator(prompt=template)
        assert "\n" not in str(info.value)
    # braces inside the text are the text's own
    rendered = render_prompt("{source}: {text}", "English", "Malay", "{x} {{y}}")
    assert rendered == "English: {x} {{y}}"


def test_the_cache_is_reused_and_a_changed_prompt_misses_it(tmp_path):
    texts = sentences(4)
    path = tmp_path / "cache.jsonl"
    first = CachedTranslator(tiny_llm_translator(), TranslationCache(path))
    translated = first.translate(texts, "en", "sw")
    assert first.translated == 4

    again = CachedTranslator(tiny_llm_translator(), TranslationCache(path))
    calls = record_generate(again.translator)
    assert again.translate(texts, "en", "sw") == translated
    assert (again.hits, again.translated, calls) == (4, 0, [])

    prompt = "English: {text}\n{target}:"
    other = CachedTranslator(tiny_llm_translator(prompt=prompt), TranslationCache(path))
    other.translate(texts, "en", "sw")
    assert (other.hits, other.translated) == (0, 4)


def test_the_backend_follows_the_models_config(tmp_path):
    llm = save_tiny_llm(tmp_path / "llama")
    assert detect_backend(str(llm)) == "llm"
    assert detect_backend(str(save_tiny_model(tmp_path / "m2m100"))) == "seq2seq"
    assert detect_backend("gemma-3-270m") == "llm"  # a built-in: nothing is loaded
    BertModel(tiny_config("bert")).save_pretrained(tmp_path / "bert")
    with pytest.raises(FlareError, match="neither a seq2seq MT model nor a decoder-only LM"):
        detect_backend(str(tmp_path / "bert"))
    with pytest.raises(FlareError, match="is an encoder; it cannot translate"):
        detect_backend("multilingual-e5-small")


def test_from_pretrained_local_directory(tmp_path):
    directory = save_tiny_llm(tmp_path / "llama")
    translator = HFCausalLMTranslator.from_pretrained(str(directory), max_new_tokens=12)
    assert translator.model_id == str(directory)
    assert translator.revision.startswith("local-")
    texts = sentences(3)
    assert translator.translate(texts, "en", "sw") == tiny_llm_translator().translate(
        texts, "en", "sw"
    )
