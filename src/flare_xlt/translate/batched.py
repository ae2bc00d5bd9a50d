"""What the Hugging Face translation backends share: splitting, batching, restoring order.

:class:`BatchedTranslator` implements :meth:`~flare_xlt.translate.base.Translator.translate`
for any model that translates a batch of short pieces: texts longer than
``max_input_tokens`` are split into sentences (never truncated, see
:mod:`flare_xlt.translate.segment`), the pieces of all texts are sorted by length
and translated in batches of ``batch_size`` (longest first), then restored to input
order and joined with the target language's sentence separator. Empty or
whitespace-only texts translate to ``""`` without running the model.

A backend says how it serves languages (:meth:`BatchedTranslator.model_language`),
what changes its output (``settings``) and how it translates one batch
(:meth:`BatchedTranslator._translate_batch`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tqdm.auto import tqdm

from flare_xlt.errors import FlareError
from flare_xlt.translate.base import ModelLanguage
from flare_xlt.translate.loading import load_pretrained
from flare_xlt.translate.segment import joiner, segment_passage


class BatchedTranslator(ABC):
    """A model and tokenizer that translate in length-sorted batches of sentence-sized pieces.

    Args:
        model: a transformers model with ``generate``.
        tokenizer: its tokenizer.
        model_id: id recorded in caches and provenance; defaults to the model's
            ``name_or_path``.
        revision: model revision; defaults to the hub commit hash when known,
            else ``"unversioned"``.
        batch_size: pieces per ``generate`` call.
        max_input_tokens: texts with more tokens (excluding special tokens) are
            split into sentences; shorter texts are translated whole.
        progress: show a progress bar over batches.
    """

    auto_model_class: ClassVar[type]  # the transformers Auto class that loads the model

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        revision: str | None = None,
        device: str | Any | None = None,
        dtype: str | Any | None = None,
        **options: Any,
    ) -> BatchedTranslator:
        """Load a built-in name, hub id or local directory; ``options`` go to the constructor.

        Raises:
            ModelUnavailableError: the model cannot be loaded (offline, typo, missing
                files, missing tokenizer dependency), in one line.
        """
        model, tokenizer, resolved = load_pretrained(
            name_or_path, cls.auto_model_class, revision=revision, device=device, dtype=dtype
        )
        return cls(model, tokenizer, model_id=name_or_path, revision=resolved, **options)

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str | None = None,
        revision: str | None = None,
        batch_size: int = 16,
        max_input_tokens: int = 200,
        progress: bool = False,
    ) -> None:
        require_positive(batch_size=batch_size, max_input_tokens=max_input_tokens)
        self._model_id = model_id or getattr(model.config, "name_or_path", "") or ""
        if not self._model_id:
            raise FlareError("the translation model has no name; pass model_id=...")
        self._revision = revision or getattr(model.config, "_commit_hash", None) or "unversioned"
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self.progress = progress

    @property
    def model_id(self) -> str:
        """Hub id, built-in name or local path of the model."""
        return self._model_id

    @property
    def revision(self) -> str:
        """Commit hash, tag, local fingerprint, or ``"unversioned"``."""
        return self._revision

    @property
    @abstractmethod
    def settings(self) -> Mapping[str, Any]:
        """Settings that change the output (JSON scalars; batch size does not)."""

    @abstractmethod
    def model_language(self, code: str) -> ModelLanguage:
        """How the model is asked for the language ``code``."""

    def language_pair(self, src_lang: str, tgt_lang: str) -> tuple[ModelLanguage, ModelLanguage]:
        """Both languages as the model serves them; FlareError if it cannot serve one."""
        return self.model_language(src_lang), self.model_language(tgt_lang)

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

    def _translate_pieces(
        self, pieces: list[str], source: ModelLanguage, target: ModelLanguage
    ) -> list[str]:
        """Translate in length-sorted batches (longest first); return in input order."""
        lengths = [self.count_tokens(piece) for piece in pieces]
        order = sorted(range(len(pieces)), key=lambda i: lengths[i], reverse=True)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        results = [""] * len(pieces)
        progress = tqdm(batches, desc="translating", leave=False, disable=not self.progress)
        for batch in progress:
            outputs = self._translate_batch([pieces[i] for i in batch], source, target)
            for index, text in zip(batch, outputs, strict=True):
                results[index] = text
        return results

    @abstractmethod
    def _translate_batch(
        self, pieces: list[str], source: ModelLanguage, target: ModelLanguage
    ) -> list[str]:
        """One translation per piece (stripped), in the order given."""


def require_positive(**values: int) -> None:
    """FlareError naming the first of ``values`` that is below 1."""
    for name, value in values.items():
        if value < 1:
            raise FlareError(f"{name} must be at least 1, got {value}")
