"""Translating a task split into a paired (English, target) dataset file.

FLARE trains on (English, target) pairs. Following the paper, the English
train and validation sets are translated *into* the target language
(translate-train, ``direction="to_target"``), and the target test set *into*
English (translate-test, ``direction="to_english"``), which gives FLARE its
English auxiliary input at test time.

The output is JSON Lines, one object per example, with the English side under
``source_*`` names whichever way the translation went:

* classification: ``id``, ``source_text``, ``target_text``, ``label`` (plus
  ``source_text_pair`` / ``target_text_pair`` for text-pair tasks such as NLI);
* QA (SQuAD-like): ``id``, ``context``, ``question``, ``answers`` (a list of
  ``{"text", "answer_start"}``), ``source_context``, ``source_question``. For
  translate-train the first gold answer is projected with markers (see
  :mod:`flare_xlt.translate.qa`), the English answer is kept as
  ``source_answers``, and examples whose markers are lost are dropped and
  counted; for translate-test the target answers are kept as they are, and no
  example is dropped.

This is the format :func:`flare_xlt.tasks.load_parallel_file` reads.

Next to it, ``<output>.provenance.json`` records the model, revision, settings,
languages (including any fallback used), source ids, counts, date and package
version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flare_xlt.errors import FlareError
from flare_xlt.fileio import write_text_atomically
from flare_xlt.tasks.examples import ClassificationExample, Example, QAExample
from flare_xlt.translate.base import Translator, check_outputs
from flare_xlt.translate.cache import CachedTranslator, package_version
from flare_xlt.translate.qa import Markers, ProjectionReport, QAInput, project_qa

DIRECTIONS = ("to_target", "to_english")
ENGLISH = "eng"
# Output fields that hold translations, by direction (classification and QA).
_TRANSLATED_FIELDS = {
    "to_target": ("target_text", "target_text_pair", "context", "question"),
    "to_english": ("source_text", "source_text_pair", "source_context", "source_question"),
}


@dataclass(frozen=True)
class TranslationSummary:
    """What :func:`translate_dataset` wrote.

    Attributes:
        output: the paired JSONL file.
        provenance: its ``.provenance.json`` sidecar.
        examples: examples given.
        written: examples written (fewer when QA answers were lost or a
            translation came out empty).
        projection: answer-projection counts (translate-train QA only).
        empty_translation_ids: examples dropped because a translation was
            empty (the parallel loader rejects empty texts).
    """

    output: Path
    provenance: Path
    examples: int
    written: int
    projection: ProjectionReport | None = None
    empty_translation_ids: tuple[str, ...] = ()


def direction_for_split(split: str) -> str:
    """``"to_english"`` for test (translate-test), ``"to_target"`` for train/validation."""
    if split == "test":
        return "to_english"
    if split in ("train", "validation"):
        return "to_target"
    raise FlareError(f"split must be train, validation or test, not {split!r}")


def direction_languages(direction: str, lang: str) -> tuple[str, str]:
    """(source, target) language codes: English -> ``lang`` for ``"to_target"``, else back."""
    return (ENGLISH, lang) if direction == "to_target" else (lang, ENGLISH)


def provenance_path(output: str | Path) -> Path:
    """The sidecar file of a paired dataset: ``<output>.provenance.json``."""
    output = Path(output)
    return output.with_name(output.name + ".provenance.json")


def translate_dataset(
    examples: Sequence[Example],
    translator: Translator,
    output: str | Path,
    *,
    lang: str,
    direction: str,
    task: str = "custom",
    split: str = "unspecified",
    markers: Markers | None = None,
    label_names: Sequence[str] | None = None,
) -> TranslationSummary:
    """Translate the text side (``target`` fields) of ``examples`` and write a paired dataset.

    Args:
        examples: one task split, all classification or all QA. For
            ``"to_target"`` they must be English examples.
        translator: any :class:`Translator` (wrap it in a
            :class:`~flare_xlt.translate.cache.CachedTranslator` to resume runs).
        output: the JSONL file to write (replaced atomically when complete).
        lang: the non-English language of the pair.
        direction: ``"to_target"`` (English -> ``lang``) or ``"to_english"``.
        task, split: recorded in the provenance.
        markers: QA answer markers (default ``«``/``»``).
        label_names: write classification labels as these names instead of indices.
    """
    if direction not in DIRECTIONS:
        raise FlareError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if not examples:
        raise FlareError("no examples to translate")
    src, tgt = direction_languages(direction, lang)
    if direction == "to_target":
        _require_english(examples)
    output = Path(output)
    _check_writable(output)
    if all(isinstance(ex, ClassificationExample) for ex in examples):
        records = _classification(examples, translator, src, tgt, direction, label_names)
        projection = None
    elif all(isinstance(ex, QAExample) for ex in examples):
        records, projection = _qa(examples, translator, src, tgt, direction, markers)
    else:
        raise FlareError("examples must be all classification or all QA examples")
    fields = _TRANSLATED_FIELDS[direction]
    empty = tuple(r["id"] for r in records if any(r.get(f) == "" for f in fields))
    records = [r for r in records if all(r.get(f) != "" for f in fields)]
    _write_atomic(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    provenance = {
        "flare_xlt": package_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "split": split,
        "direction": direction,
        "output": output.name,
        "model": {
            "id": translator.model_id,
            "revision": translator.revision,
            "settings": dict(translator.settings),
        },
        "languages": {
            "from": asdict(translator.model_language(src)),
            "to": asdict(translator.model_language(tgt)),
        },
        "counts": {
            "examples": len(examples),
            "written": len(records),
            "projection": projection.to_dict() if projection else None,
            "empty_translation": len(empty),
        },
        "empty_translation_ids": list(empty),
        "source_ids": [ex.id for ex in examples],
        "cache": _cache_info(translator),
    }
    sidecar = provenance_path(output)
    _write_atomic(sidecar, json.dumps(provenance, ensure_ascii=False, indent=2) + "\n")
    return TranslationSummary(output, sidecar, len(examples), len(records), projection, empty)


def _require_english(examples: Sequence[Example]) -> None:
    for example in examples:
        if example.language != ENGLISH:
            raise FlareError(
                f"translate-train translates English examples, but example {example.id!r} "
                f"is in {example.language!r}; load the English split of the task"
            )


def _translate(translator: Translator, texts: list[str], src: str, tgt: str) -> list[str]:
    return check_outputs(texts, translator.translate(texts, src, tgt), translator.model_id)


def _classification(
    examples: Sequence[Example],
    translator: Translator,
    src: str,
    tgt: str,
    direction: str,
    label_names: Sequence[str] | None,
) -> list[dict[str, Any]]:
    if any(len(ex.target) > 2 for ex in examples):
        raise FlareError("classification examples with more than two texts are not supported")
    flat = [text for ex in examples for text in ex.target]
    translated = iter(_translate(translator, flat, src, tgt))
    records = []
    for example in examples:
        originals = example.target
        translations = tuple(next(translated) for _ in originals)
        english, target = (
            (originals, translations) if direction == "to_target" else (translations, originals)
        )
        record: dict[str, Any] = {
            "id": example.id,
            "source_text": english[0],
            "target_text": target[0],
            "label": label_names[example.label] if label_names else example.label,
        }
        if len(originals) == 2:
            record["source_text_pair"] = english[1]
            record["target_text_pair"] = target[1]
        records.append(record)
    return records


def _qa(
    examples: Sequence[Example],
    translator: Translator,
    src: str,
    tgt: str,
    direction: str,
    markers: Markers | None,
) -> tuple[list[dict[str, Any]], ProjectionReport | None]:
    if direction == "to_english":
        contexts = _translate(translator, [ex.context for ex in examples], src, tgt)
        questions = _translate(translator, [ex.question for ex in examples], src, tgt)
        records = [
            {
                "id": ex.id,
                "context": ex.context,
                "question": ex.question,
                "answers": _answers(ex.answers, ex.answer_starts),
                "source_context": context,
                "source_question": question,
            }
            for ex, context, question in zip(examples, contexts, questions, strict=True)
        ]
        return records, None
    inputs = [
        QAInput(ex.id, ex.context, ex.question, ex.answers[0], ex.answer_starts[0])
        for ex in examples
    ]
    projected, report = project_qa(inputs, translator, src, tgt, markers)
    records = [
        {
            "id": qa.id,
            "context": qa.context,
            "question": qa.question,
            "answers": _answers((qa.answer,), (qa.answer_start,)),
            "source_context": qa.source.context,
            "source_question": qa.source.question,
            "source_answers": _answers((qa.source.answer,), (qa.source.answer_start,)),
        }
        for qa in projected
    ]
    return records, report


def _answers(texts: Sequence[str], starts: Sequence[int]) -> list[dict[str, Any]]:
    return [
        {"text": text, "answer_start": start} for text, start in zip(texts, starts, strict=True)
    ]


def _cache_info(translator: Translator) -> dict[str, Any] | None:
    if not isinstance(translator, CachedTranslator):
        return None
    return {
        "path": str(translator.cache.path),
        "hits": translator.hits,
        "translated": translator.translated,
    }


def _check_writable(path: Path) -> None:
    """Fail before any translating if ``path`` cannot be written as a file."""
    if path.is_dir():
        raise FlareError(f"output {path} is a directory; name a file, e.g. {path / 'pairs.jsonl'}")
    existing = next(folder for folder in (path.parent, *path.parent.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise FlareError(f"cannot write output {path}: {existing} is not a writable directory")


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (no half-written outputs)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, text)
    except OSError as error:
        raise FlareError(f"cannot write {path}: {error.strerror or error}") from error
