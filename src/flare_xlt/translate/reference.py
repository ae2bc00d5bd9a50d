"""Scoring a translated dataset file against reference translations, with chrF.

A reference file is CSV, TSV or JSONL with an ``id`` and a ``text`` column (and
``text_pair`` for text-pair tasks): the format of NusaX's own split files, so the
human English of a NusaX test split is ``nusax/sentiment/english/test.csv``. Each
example of the paired file that :func:`~flare_xlt.translate.dataset.translate_dataset`
wrote is matched by id, and its translated side (``source_text`` for translate-test,
``target_text`` for translate-train, and their ``_pair``) is scored against the
reference with corpus chrF (:func:`flare_xlt.evaluate.chrf`). References of examples
that are not in the file (cut by ``--limit``, or dropped) are not scored;
:func:`check_references` says before any translating whether every example has one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.evaluate.chrf import ChrF, chrf
from flare_xlt.tasks.examples import ClassificationExample, Example
from flare_xlt.tasks.readers import (
    BadField,
    file_error,
    get_text,
    read_delimited,
    read_jsonl,
)
from flare_xlt.tasks.report import Issues

_DELIMITERS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".ndjson": None}
_PAIR = "text_pair"


@dataclass(frozen=True)
class TranslationScore:
    """How close a file's translations are to their references.

    Attributes:
        chrf: corpus chrF and its sacrebleu signature.
        texts: how many translated texts were scored.
    """

    chrf: ChrF
    texts: int


def read_references(path: Path) -> dict[str, tuple[str, ...]]:
    """Reference texts by example id: ``(text,)``, or ``(text, text_pair)`` with that column.

    Raises:
        FlareError: an unsupported file type, a missing column or value, or a repeated id,
            naming the file and line.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _DELIMITERS:
        supported = ", ".join(_DELIMITERS)
        raise file_error(path, "file", f"unsupported reference file type (use {supported})")
    issues = Issues()
    if _DELIMITERS[suffix] is None:
        records = read_jsonl(path, issues)
    else:
        records, _ = read_delimited(path, ("id", "text"), issues, delimiter=_DELIMITERS[suffix])
    references: dict[str, tuple[str, ...]] = {}
    for record in records:
        try:
            identifier = _identifier(record.values)
            fields = ("text", _PAIR) if _PAIR in record.values else ("text",)
            texts = tuple(get_text(record.values, name) for name in fields)
        except BadField as bad:
            raise file_error(path, record.location, bad.message, bad.field) from None
        if identifier in references:
            raise file_error(path, record.location, f"id {identifier!r} is repeated", "id")
        references[identifier] = texts
    if not references:
        raise file_error(path, "file", "no reference texts")
    return references


def _identifier(values: dict) -> str:
    """The record's id as text (a JSON number id ``12`` is ``"12"``)."""
    value = values.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return get_text(values, "id")


def check_references(references: dict[str, tuple[str, ...]], examples: Sequence[Example]) -> None:
    """Before translating: FlareError unless every example is classification and has a reference.

    A text pair needs a reference with ``text_pair`` too.
    """
    for example in examples:
        if not isinstance(example, ClassificationExample):
            raise FlareError(
                "a reference file scores classification translations (id and text columns), "
                f"not QA examples such as {example.id!r}"
            )
        reference = references.get(example.id)
        if reference is None:
            raise FlareError(f"the reference file has no text for example {example.id!r}")
        if len(reference) < len(example.target):
            raise FlareError(_no_pair(example.id))


def _no_pair(identifier: object) -> str:
    return (
        f"example {identifier!r} is a text pair, but its reference has no {_PAIR}: "
        f"add a {_PAIR} column to the reference file"
    )


def score_translations(
    output: Path, direction: str, references: dict[str, tuple[str, ...]]
) -> TranslationScore:
    """chrF of the translations in the paired ``output`` file against ``references``.

    Args:
        output: a classification file written by ``translate_dataset``.
        direction: the direction it was translated in (``to_english`` or ``to_target``).
        references: texts by example id, as :func:`read_references` returns them.

    Raises:
        FlareError: QA records, an example without a reference, or a text pair whose
            reference has no ``text_pair``.
    """
    side = "source" if direction == "to_english" else "target"
    hypotheses: list[str] = []
    expected: list[str] = []
    for line in Path(output).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if f"{side}_text" not in record:
            raise FlareError(
                "a reference file scores classification translations (id and text columns), "
                f"not the QA examples in {output}"
            )
        reference = references.get(str(record["id"]))
        if reference is None:
            raise FlareError(f"the reference file has no text for example {record['id']!r}")
        translated = [record[f"{side}_text"]]
        if f"{side}_text_pair" in record:
            if len(reference) < 2:
                raise FlareError(_no_pair(record["id"]))
            translated.append(record[f"{side}_text_pair"])
        hypotheses += translated
        expected += reference[: len(translated)]
    return TranslationScore(chrf(hypotheses, expected), len(hypotheses))
