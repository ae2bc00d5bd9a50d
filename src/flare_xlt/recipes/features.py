"""From task examples to token features and padded batches, for every method.

A feature is a dict of plain lists for one example: ``input_ids`` (the main
input), optionally ``source_input_ids`` (English, for FLARE) or
``latent_input_ids`` (target text in the latent encoder's tokenizer, for
FLARE-MT), ``labels`` (class index) and ``cache_key`` (the example id).
:class:`Collator` (with :func:`pad`) turns a list of features, of any task (QA's too:
:mod:`flare_xlt.recipes.qa_features`), into ``[B, T]`` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import PreTrainedTokenizerBase

from flare_xlt.errors import FlareError
from flare_xlt.recipes.methods import Method
from flare_xlt.recipes.truncation import Truncations
from flare_xlt.tasks import ClassificationExample, PromptTemplate

HeadKind = Literal["causal_lm", "seq2seq", "classifier"]
GENERATIVE = ("causal_lm", "seq2seq")  # heads that read a prompt and answer in words
IGNORE_INDEX = -100  # the label of a token that is not scored


@dataclass
class Featurizer:
    """Tokenizes classification examples for one method and one backbone.

    Attributes:
        tokenizer: the backbone's tokenizer.
        template: prompt template (used for causal LMs; encoders see raw texts).
        head: ``causal_lm`` (verbalizer scoring at the last prompt token), ``seq2seq``
            (an encoder-decoder: the prompt is the encoder's input and the label words
            are scored at the decoder's first step) or ``classifier`` (a
            sequence-classification head).
        method: decides the main input and the extra streams.
        max_length: token limit of one side; concatenated input gets twice this.
        latent_tokenizer: tokenizer of the FLARE-MT latent encoder.
        truncations: how many texts of each stream were cut to their limit.
    """

    tokenizer: PreTrainedTokenizerBase
    template: PromptTemplate
    head: HeadKind
    method: Method
    max_length: int = 128
    latent_tokenizer: PreTrainedTokenizerBase | None = None
    truncations: Truncations = field(default_factory=Truncations, repr=False, compare=False)

    def __call__(self, example: ClassificationExample) -> dict:
        if self.method.main_input == "concat":
            texts = _concatenate(example, "\n" if self.head in GENERATIVE else " ")
            main = self._encode(texts, 2 * self.max_length, "input")
        else:
            main = self._encode(_side(example, self.method.main_input), self.max_length, "input")
        feature = {"input_ids": main, "labels": example.label, "cache_key": example.id}
        if self.method.english_pass:
            english = _side(example, "source")
            feature["source_input_ids"] = self._encode(english, self.max_length, "English")
        elif self.method.source == "latent":
            if self.latent_tokenizer is None:
                raise FlareError(f"method {self.method.name!r} needs a latent encoder tokenizer")
            ids = self.latent_tokenizer(" ".join(example.target))["input_ids"]
            feature["latent_input_ids"] = self._cut(ids, self.max_length, "latent")
        return feature

    def _encode(self, texts: Sequence[str], max_length: int, stream: str) -> list[int]:
        if self.head in GENERATIVE:
            prompt = self.template.format(*texts).rstrip(" ")
            return self._cut(self.tokenizer(prompt)["input_ids"], max_length, stream)
        ids = self.tokenizer(*texts, verbose=False)["input_ids"]  # counted before the cut
        self.truncations.add(stream, len(ids), max_length)
        if len(ids) <= max_length:
            return ids
        return self.tokenizer(*texts, truncation=True, max_length=max_length)["input_ids"]

    def _cut(self, ids: list[int], max_length: int, stream: str) -> list[int]:
        """``ids`` cut to ``max_length`` (:func:`_truncate`), counted under ``stream``."""
        self.truncations.add(stream, len(ids), max_length)
        return _truncate(ids, max_length)


def _side(example: ClassificationExample, side: str) -> tuple[str, ...]:
    texts = example.target if side == "target" else example.source
    if texts is None:
        raise FlareError(
            f"example {example.id!r} has no English side, which this method needs; "
            "translate the data first (flare translate)"
        )
    return texts


def _concatenate(example: ClassificationExample, separator: str) -> tuple[str, ...]:
    """Field-wise ``English <sep> target`` (input-level fusion)."""
    source = _side(example, "source")
    return tuple(f"{s}{separator}{t}" for s, t in zip(source, example.target, strict=True))


def _truncate(ids: list[int], max_length: int) -> list[int]:
    """Keep the first token (BOS/CLS) and the last ``max_length - 1``: prompts end in the cue."""
    if len(ids) <= max_length:
        return ids
    return ids[:1] + ids[len(ids) - max_length + 1 :]


def verbalizer_token_ids(tokenizer: PreTrainedTokenizerBase, template: PromptTemplate) -> list[int]:
    """First token of ``" " + word`` for each label word; they must be distinct."""
    ids = [
        tokenizer(" " + word, add_special_tokens=False)["input_ids"][0]
        for word in template.verbalizers
    ]
    if len(set(ids)) != len(ids):
        raise FlareError(
            f"label words {template.verbalizers} start with the same token for this tokenizer; "
            "use a prompt template whose label words differ in their first token"
        )
    return ids


@dataclass
class Collator:
    """Pads the features of any task into a batch of ``[B, T]`` tensors.

    ``input_ids``/``source_input_ids`` become ids and ``attention_mask``/
    ``source_attention_mask`` padded on ``padding_side`` (left for decoders, so the
    answer position is the last one); latent inputs are always right-padded; QA's
    ``prompt_ids`` become ``prompt_input_ids``/``prompt_attention_mask``, always
    left-padded for generation. Class ``labels`` become a ``[B]`` tensor, token
    ``labels`` (QA answers) are padded on ``padding_side`` with -100. Extractive QA's
    ``start_positions``/``end_positions`` become ``[B]`` tensors. ``cache_keys`` and
    QA's ``references``, ``offsets`` and ``contexts`` are passed through as lists.
    """

    pad_token_id: int
    padding_side: str = "left"
    latent_pad_token_id: int = 0

    def __call__(self, features: list[dict]) -> dict:
        first = features[0]
        batch = {"cache_keys": [f["cache_key"] for f in features]}
        if "references" in first:
            batch["references"] = [f["references"] for f in features]
        streams = (
            ("input_ids", "input_ids", "attention_mask", self.pad_token_id, self.padding_side),
            (
                "source_input_ids",
                "source_input_ids",
                "source_attention_mask",
                self.pad_token_id,
                self.padding_side,
            ),
            (
                "latent_input_ids",
                "latent_input_ids",
                "latent_attention_mask",
                self.latent_pad_token_id,
                "right",
            ),
            ("prompt_ids", "prompt_input_ids", "prompt_attention_mask", self.pad_token_id, "left"),
        )
        for key, ids_key, mask_key, pad_id, side in streams:
            if key in first:
                batch[ids_key], batch[mask_key] = pad([f[key] for f in features], pad_id, side)
        if "labels" in first:
            labels = [f["labels"] for f in features]
            if isinstance(labels[0], list):  # answer tokens
                batch["labels"], _ = pad(labels, IGNORE_INDEX, self.padding_side)
            else:
                batch["labels"] = torch.tensor(labels)
        if "start_positions" in first:
            for key in ("start_positions", "end_positions"):
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
            batch["offsets"] = [f["offsets"] for f in features]
            batch["contexts"] = [f["context"] for f in features]
        return batch


def pad(rows: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` of token ids -> ``[B, T]`` ids and mask, padded on ``side``."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask
