"""Hugging Face seq2seq MT models (NLLB-200, M2M100, Marian) as a :class:`Translator`.

Inputs are built by hand as ``[source language token] + text tokens + [eos]``
(the format NLLB and M2M100 are trained on) and generation is forced to start
with the target language token, so any tokenizer whose vocabulary follows the
NLLB or M2M100 convention works (see :mod:`flare_xlt.translate.codes`); Marian
models get the tokenizer's own special tokens and no language codes.

Sentence splitting, length-sorted batching and restoring the input order are
:class:`~flare_xlt.translate.batched.BatchedTranslator`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from transformers import AutoModelForSeq2SeqLM

from flare_xlt.errors import FlareError
from flare_xlt.languages import resolve_language
from flare_xlt.translate.base import ModelLanguage
from flare_xlt.translate.batched import BatchedTranslator, require_positive
from flare_xlt.translate.codes import SCHEMES, detect_scheme, model_language


class HFSeq2SeqTranslator(BatchedTranslator):
    """A transformers encoder-decoder MT model with deterministic (beam or greedy) decoding.

    Args:
        model: an ``AutoModelForSeq2SeqLM``-style model (anything with ``generate``).
        tokenizer: its tokenizer.
        num_beams: beam width (1 = greedy).
        max_new_tokens: generation limit per piece.
        fallback_lang: language used when the model has no code for a requested
            one (e.g. ``"ind"`` for Toba Batak with NLLB); never used silently.
        lang_scheme: ``"flores200"``, ``"m2m100"`` or ``"none"``; detected from
            the vocabulary when omitted.
        options: ``model_id``, ``revision``, ``batch_size``, ``max_input_tokens`` and
            ``progress`` of :class:`~flare_xlt.translate.batched.BatchedTranslator`.
    """

    auto_model_class = AutoModelForSeq2SeqLM

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        num_beams: int = 4,
        max_new_tokens: int = 256,
        fallback_lang: str | None = None,
        lang_scheme: str | None = None,
        **options: Any,
    ) -> None:
        require_positive(num_beams=num_beams, max_new_tokens=max_new_tokens)
        super().__init__(model, tokenizer, **options)
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.fallback_lang = fallback_lang
        self._vocab = tokenizer.get_vocab()
        self.lang_scheme = lang_scheme or detect_scheme(self._vocab)
        if self.lang_scheme not in SCHEMES:
            raise FlareError(f"unknown lang_scheme {self.lang_scheme!r}; expected one of {SCHEMES}")
        pad = tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else model.config.pad_token_id
        self._languages: dict[str, ModelLanguage] = {}

    @property
    def settings(self) -> Mapping[str, Any]:
        """Settings that change the output (batch size does not)."""
        return {
            "lang_scheme": self.lang_scheme,
            "max_input_tokens": self.max_input_tokens,
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
        }

    def model_language(self, code: str) -> ModelLanguage:
        """The model's token for ``code`` (applying ``fallback_lang`` where it has none)."""
        if code not in self._languages:
            self._languages[code] = model_language(
                code, self.lang_scheme, self._vocab, self.fallback_lang
            )
        return self._languages[code]

    def language_pair(self, src_lang: str, tgt_lang: str) -> tuple[ModelLanguage, ModelLanguage]:
        """Both languages as the model serves them; a one-pair model must match the direction.

        A Marian tokenizer declares its pair (``source_lang``/``target_lang``, e.g. ``en``
        and ``id``); feeding it another language gives fluent nonsense, so a mismatch is an
        error. A declared code this project does not know passes when it has three letters
        (it may be a language group such as ``mul`` or ``map``), not when it has two (an
        ISO 639-1 code always names one language).
        """
        source, target = self.model_language(src_lang), self.model_language(tgt_lang)
        declared = [getattr(self.tokenizer, f"{side}_lang", None) for side in ("source", "target")]
        if _other_language(declared[0], source) or _other_language(declared[1], target):
            raise FlareError(
                f"translation model {self.model_id!r} translates {declared[0]} -> {declared[1]} "
                f"(its tokenizer says so), not {src_lang} -> {tgt_lang}: use a model for "
                "this language pair and direction"
            )
        return source, target

    def _translate_batch(
        self, pieces: list[str], source: ModelLanguage, target: ModelLanguage
    ) -> list[str]:
        return self._generate(self._encode(pieces, source), target)

    def _encode(self, pieces: list[str], source: ModelLanguage) -> list[list[int]]:
        if source.token is None:
            return self.tokenizer(pieces)["input_ids"]
        prefix = [self.tokenizer.convert_tokens_to_ids(source.token)]
        suffix = [self.tokenizer.eos_token_id]
        encoded = self.tokenizer(pieces, add_special_tokens=False)["input_ids"]
        return [prefix + ids + suffix for ids in encoded]

    def _generate(self, batch: list[list[int]], target: ModelLanguage) -> list[str]:
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([ids + [self._pad_id] * (width - len(ids)) for ids in batch])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch])
        forced = {}
        if target.token is not None:
            forced["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(target.token)
        device = self.model.device
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                num_beams=self.num_beams,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                **forced,
            )
        decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return [text.strip() for text in decoded]


def _other_language(declared: str | None, language: ModelLanguage) -> bool:
    """Whether a one-pair model's declared code (``en``, ``pt_br``, ``mul``) is not ``language``."""
    if not declared:
        return False
    base = re.split(r"[_-]", declared.lower())[0]
    try:
        return resolve_language(base).iso639_3 != language.iso639_3
    except FlareError:  # unknown here: a two-letter code is another language, three may be a group
        return len(base) == 2
