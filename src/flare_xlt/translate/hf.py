"""Hugging Face seq2seq MT models (NLLB-200, M2M100, Marian) as a :class:`Translator`.

Inputs are built by hand as ``[source language token] + text tokens + [eos]``
(the format NLLB and M2M100 are trained on) and generation is forced to start
with the target language token, so any tokenizer whose vocabulary follows the
NLLB or M2M100 convention works (see :mod:`flare_xlt.translate.codes`); Marian
models get the tokenizer's own special tokens and no language codes.

Texts longer than ``max_input_tokens`` are split into sentences (never
truncated, see :mod:`flare_xlt.translate.segment`), the pieces of all texts are
sorted by length and translated in batches, then restored to input order and
joined. Empty or whitespace-only texts translate to ``""`` without running the
model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from tqdm.auto import tqdm
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from flare_xlt.errors import FlareError, ModelUnavailableError
from flare_xlt.languages import resolve_language
from flare_xlt.models.hub import hub_options
from flare_xlt.translate.base import ModelLanguage
from flare_xlt.translate.codes import SCHEMES, detect_scheme, model_language
from flare_xlt.translate.segment import joiner, segment_passage


class HFSeq2SeqTranslator:
    """A transformers encoder-decoder MT model with deterministic (beam or greedy) decoding.

    Args:
        model: an ``AutoModelForSeq2SeqLM``-style model (anything with ``generate``).
        tokenizer: its tokenizer.
        model_id: id recorded in caches and provenance; defaults to the model's
            ``name_or_path``.
        revision: model revision; defaults to the hub commit hash when known,
            else ``"unversioned"``.
        batch_size: pieces per ``generate`` call.
        num_beams: beam width (1 = greedy).
        max_new_tokens: generation limit per piece.
        max_input_tokens: texts with more tokens (excluding special tokens) are
            split into sentences; shorter texts are translated whole.
        fallback_lang: language used when the model has no code for a requested
            one (e.g. ``"ind"`` for Toba Batak with NLLB); never used silently.
        lang_scheme: ``"flores200"``, ``"m2m100"`` or ``"none"``; detected from
            the vocabulary when omitted.
        progress: show a progress bar over batches.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str | None = None,
        revision: str | None = None,
        batch_size: int = 16,
        num_beams: int = 4,
        max_new_tokens: int = 256,
        max_input_tokens: int = 200,
        fallback_lang: str | None = None,
        lang_scheme: str | None = None,
        progress: bool = False,
    ) -> None:
        for name, value in [
            ("batch_size", batch_size),
            ("num_beams", num_beams),
            ("max_new_tokens", max_new_tokens),
            ("max_input_tokens", max_input_tokens),
        ]:
            if value < 1:
                raise FlareError(f"{name} must be at least 1, got {value}")
        self._model_id = model_id or getattr(model.config, "name_or_path", "") or ""
        if not self._model_id:
            raise FlareError("the translation model has no name; pass model_id=...")
        self._revision = revision or getattr(model.config, "_commit_hash", None) or "unversioned"
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.fallback_lang = fallback_lang
        self.progress = progress
        self._vocab = tokenizer.get_vocab()
        self.lang_scheme = lang_scheme or detect_scheme(self._vocab)
        if self.lang_scheme not in SCHEMES:
            raise FlareError(f"unknown lang_scheme {self.lang_scheme!r}; expected one of {SCHEMES}")
        pad = tokenizer.pad_token_id
        self._pad_id = pad if pad is not None else model.config.pad_token_id
        self._languages: dict[str, ModelLanguage] = {}

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        revision: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **options: Any,
    ) -> HFSeq2SeqTranslator:
        """Load a hub id or local directory; ``options`` are the constructor's keyword arguments.

        Raises:
            ModelUnavailableError: the model cannot be loaded (offline, typo,
                missing files, missing tokenizer dependency), in one line.
        """
        if device is not None:
            device = _available_device(device)
        kwargs: dict[str, Any] = {"revision": revision}
        if not Path(name_or_path).is_dir():  # a hub id: fail at once when it cannot be reached
            kwargs.update(hub_options())
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
            if dtype is not None:
                kwargs["dtype"] = dtype
            model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, **kwargs)
        except (OSError, ValueError, ImportError, SafetensorError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelUnavailableError(
                f"cannot load translation model {name_or_path!r}: {reason}"
            ) from err
        if device is not None:
            model = model.to(device)
        if Path(name_or_path).is_dir():  # the hub ignores `revision` for a local folder
            resolved = local_fingerprint(Path(name_or_path))
        else:  # the commit a branch or tag resolved to, so a moved branch is a cache miss
            resolved = getattr(model.config, "_commit_hash", None) or revision
        return cls(model, tokenizer, model_id=name_or_path, revision=resolved, **options)

    @property
    def model_id(self) -> str:
        """Hub id or local path of the model."""
        return self._model_id

    @property
    def revision(self) -> str:
        """Commit hash, tag, local fingerprint, or ``"unversioned"``."""
        return self._revision

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

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        """Translate ``texts``; long ones sentence by sentence, empty ones to ``""``."""
        source, target = self.language_pair(src_lang, tgt_lang)
        segments = [self._segments(text) for text in texts]
        outputs = iter(self._translate_pieces([p for s in segments for p in s], source, target))
        separator = joiner(target.iso639_3)
        translations = []
        for pieces in segments:
            translated = [next(outputs) for _ in pieces]
            translations.append(separator.join(t for t in translated if t))
        return translations

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` without special tokens."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _segments(self, text: str) -> list[str]:
        """The stripped, non-empty pieces ``text`` is translated in."""
        if not text.strip():
            return []
        pieces = segment_passage(text, self.count_tokens, self.max_input_tokens)
        return [piece.strip() for piece in pieces if piece.strip()]

    def _encode(self, pieces: list[str], source: ModelLanguage) -> list[list[int]]:
        if source.token is None:
            return self.tokenizer(pieces)["input_ids"]
        prefix = [self.tokenizer.convert_tokens_to_ids(source.token)]
        suffix = [self.tokenizer.eos_token_id]
        encoded = self.tokenizer(pieces, add_special_tokens=False)["input_ids"]
        return [prefix + ids + suffix for ids in encoded]

    def _translate_pieces(
        self, pieces: list[str], source: ModelLanguage, target: ModelLanguage
    ) -> list[str]:
        """Translate in length-sorted batches (longest first); return in input order."""
        if not pieces:
            return []
        encoded = self._encode(pieces, source)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        results = [""] * len(pieces)
        progress = tqdm(batches, desc="translating", leave=False, disable=not self.progress)
        for batch in progress:
            outputs = self._generate([encoded[i] for i in batch], target)
            for index, text in zip(batch, outputs, strict=True):
                results[index] = text
        return results

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


def _available_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or a one-line error if this machine lacks it."""
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise FlareError(f"unknown device {device!r}: {err}") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise FlareError(
            f"device {device} is not available: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); use --device cpu"
        )
    return device


def local_fingerprint(directory: Path) -> str:
    """A revision for a local model directory: hash of its files' names, sizes and mtimes.

    Cheap (no weights are read) and changes whenever a file is rewritten; a
    copied directory gets a new fingerprint, which only costs a cache miss.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(
            f"{path.relative_to(directory)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    return "local-" + digest.hexdigest()[:16]
