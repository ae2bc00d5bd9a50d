"""Machine translation for FLARE: backends, a resumable cache, QA answer projection, datasets.

* :class:`Translator` — the protocol; :class:`HFSeq2SeqTranslator` implements
  it for NLLB-200, M2M100 and Marian models, :class:`HFCausalLMTranslator` for
  decoder-only LMs asked with a prompt (:data:`DEFAULT_PROMPT`); both share
  :class:`BatchedTranslator`'s sentence splitting and batching, and
  :func:`detect_backend` tells which one a model needs.
* :class:`CachedTranslator` + :class:`TranslationCache` — append-only,
  content-addressed, crash-safe JSONL cache; interrupted runs resume.
* :func:`project_qa` — answer-span projection with markers, with counts of
  dropped examples (:class:`ProjectionReport`).
* :func:`translate_dataset` — a task split to a paired (English, target) JSONL
  file with a provenance sidecar.
"""

from flare_xlt.translate.base import ModelLanguage, Translator
from flare_xlt.translate.batched import BatchedTranslator
from flare_xlt.translate.cache import (
    CachedTranslator,
    CacheEntry,
    TranslationCache,
    cache_key,
    default_cache_path,
)
from flare_xlt.translate.dataset import (
    TranslationSummary,
    direction_for_split,
    provenance_path,
    translate_dataset,
)
from flare_xlt.translate.hf import HFSeq2SeqTranslator
from flare_xlt.translate.llm import HFCausalLMTranslator
from flare_xlt.translate.loading import BACKENDS, detect_backend
from flare_xlt.translate.prompt import DEFAULT_PROMPT
from flare_xlt.translate.qa import Markers, ProjectedQA, ProjectionReport, QAInput, project_qa
from flare_xlt.translate.segment import segment_passage, split_sentences

__all__ = [
    "BACKENDS",
    "DEFAULT_PROMPT",
    "BatchedTranslator",
    "CacheEntry",
    "CachedTranslator",
    "HFCausalLMTranslator",
    "HFSeq2SeqTranslator",
    "Markers",
    "ModelLanguage",
    "ProjectedQA",
    "ProjectionReport",
    "QAInput",
    "TranslationCache",
    "TranslationSummary",
    "Translator",
    "cache_key",
    "default_cache_path",
    "detect_backend",
    "direction_for_split",
    "project_qa",
    "provenance_path",
    "segment_passage",
    "split_sentences",
    "translate_dataset",
]
