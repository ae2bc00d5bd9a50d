"""The featurizer, collator and scorer of a task kind: classification or QA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from flare_xlt.recipes.features import (
    GENERATIVE,
    Collator,
    Featurizer,
    HeadKind,
    verbalizer_token_ids,
)
from flare_xlt.recipes.methods import Method
from flare_xlt.recipes.qa import QAFeaturizer, QAScorer
from flare_xlt.recipes.scoring import ClassificationScorer
from flare_xlt.tasks import PromptTemplate, TaskSpec


@dataclass
class Components:
    """How one task is turned into batches, losses and predictions for one method."""

    featurize: Any
    collate: Any
    scorer: Any


def build_components(
    spec: TaskSpec,
    tokenizer: PreTrainedTokenizerBase,
    template: PromptTemplate,
    head: HeadKind,
    method: Method,
    max_length: int,
    latent_tokenizer: PreTrainedTokenizerBase | None = None,
) -> Components:
    """Components for ``spec.kind``: classification (label words or a head) or QA."""
    latent_pad = latent_tokenizer.pad_token_id if latent_tokenizer is not None else 0
    collate = Collator(tokenizer.pad_token_id, tokenizer.padding_side, latent_pad)
    if spec.kind == "qa":
        return Components(
            QAFeaturizer(tokenizer, template, head, method, max_length, latent_tokenizer),
            collate,
            QAScorer(head, tokenizer),
        )
    verbalizers = verbalizer_token_ids(tokenizer, template) if head in GENERATIVE else None
    return Components(
        Featurizer(tokenizer, template, head, method, max_length, latent_tokenizer),
        collate,
        ClassificationScorer(len(spec.label_names), verbalizers, seq2seq=head == "seq2seq"),
    )
