"""Test support for flare_xlt.translate: a tiny random M2M100, its tokenizer, toy translators.

The tokenizer is a ``tokenizers`` WordLevel model wrapped in
``PreTrainedTokenizerFast`` (no sentencepiece): one token per word or
punctuation mark, with M2M100-style (``__en__``) or NLLB-style (``eng_Latn``)
language tokens registered as special tokens. The model's outputs are
gibberish but deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import M2M100Config, M2M100ForConditionalGeneration, PreTrainedTokenizerFast

from flare_xlt.translate import HFSeq2SeqTranslator, ModelLanguage

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
M2M100_LANGS = ["__en__", "__sw__", "__id__", "__jv__", "__zh__"]
NLLB_LANGS = ["eng_Latn", "swh_Latn", "ind_Latn", "jav_Latn", "zho_Hans"]
_WORDS = (
    "the a of and to in is was it for on with as by at from this that be are "
    "cat dog sat mat big small red blue city river king queen who what where when "
    ". , ? ! ; : « » [ ] ' \" ( ) 。 ।"
)
WORDS = [*_WORDS.split(" "), *(chr(c) for c in range(ord("a"), ord("z") + 1))]


def build_tokenizer(lang_tokens: Sequence[str] = M2M100_LANGS) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer with the given language tokens (always 100 entries)."""
    entries = [*SPECIALS, *lang_tokens, *WORDS]
    entries += [f"w{i}" for i in range(100 - len(entries))]
    vocab = {token: index for index, token in enumerate(entries)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens=list(lang_tokens),
    )


def build_model(seed: int = 0) -> M2M100ForConditionalGeneration:
    """A tiny random M2M100 (vocabulary 100, d_model 16, one layer each side)."""
    torch.manual_seed(seed)
    config = M2M100Config(
        vocab_size=100,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        dropout=0.0,
        init_std=0.5,
    )
    return M2M100ForConditionalGeneration(config).eval()


def tiny_translator(lang_tokens: Sequence[str] = M2M100_LANGS, **options) -> HFSeq2SeqTranslator:
    """An in-memory HFSeq2SeqTranslator over the tiny model (greedy, short outputs by default)."""
    options = {"num_beams": 1, "max_new_tokens": 8, "model_id": "tiny-m2m100", **options}
    return HFSeq2SeqTranslator(build_model(), build_tokenizer(lang_tokens), **options)


def save_tiny_model(directory: Path, lang_tokens: Sequence[str] = M2M100_LANGS) -> Path:
    """Save the tiny model and tokenizer as an ordinary Hugging Face directory."""
    build_model().save_pretrained(directory)
    build_tokenizer(lang_tokens).save_pretrained(directory)
    return directory


class ToyTranslator:
    """A deterministic Translator applying a string function (a stand-in MT system).

    Records every batch it receives in ``calls``; sleeps ``delay`` seconds per batch.
    """

    def __init__(self, function=str.upper, model_id: str = "toy", delay: float = 0.0):
        self.function = function
        self.calls: list[list[str]] = []
        self.delay = delay
        self._model_id = model_id

    model_id = property(lambda self: self._model_id)
    revision = property(lambda self: "v1")
    settings = property(lambda self: {"mode": getattr(self.function, "__name__", "custom")})

    def model_language(self, code: str) -> ModelLanguage:
        return ModelLanguage(code, code, None)

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        self.calls.append(list(texts))
        time.sleep(self.delay)
        return [self.function(text) for text in texts]

    @property
    def texts_translated(self) -> int:
        return sum(len(batch) for batch in self.calls)


class CountingTranslator:
    """Wraps a real translator and records the batches that reach it."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[list[str]] = []

    model_id = property(lambda self: self.inner.model_id)
    revision = property(lambda self: self.inner.revision)
    settings = property(lambda self: self.inner.settings)

    def model_language(self, code: str) -> ModelLanguage:
        return self.inner.model_language(code)

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        self.calls.append(list(texts))
        return self.inner.translate(texts, src_lang, tgt_lang)

    @property
    def texts_translated(self) -> int:
        return sum(len(batch) for batch in self.calls)


def sentences(n: int) -> list[str]:
    """``n`` distinct short English-like sentences of varying length."""
    words = ["the", "big", "cat", "sat", "on", "a", "red", "mat", "by", "the", "blue", "river"]
    return [" ".join(words[: 2 + (i * 7) % 10]) + f" w{i} ." for i in range(n)]
