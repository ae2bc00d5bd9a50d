"""NusaX-senti: 3-way sentiment in Indonesian, English and ten Indonesian local languages.

Local layout: ``<data>/nusax/sentiment/<language>/{train,valid,test}.csv`` with
columns ``id,text,label``. Every language is a human translation of the same
sentences, and the same ``id`` is the same sentence, so the English side of a
target row is the English row with its id (human English; no machine English
exists for NusaX). A target id missing from the English file, or a label that
differs between the two, is a row error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.languages import Language
from flare_xlt.tasks.examples import ClassificationExample
from flare_xlt.tasks.readers import BadField, read_delimited
from flare_xlt.tasks.report import Issues
from flare_xlt.tasks.spec import TASKS

SPLIT_FILES = {"train": "train", "validation": "valid", "test": "test"}
LABELS = TASKS["nusax_senti"].label_names


@dataclass(frozen=True)
class NusaxRow:
    """One raw row: id, text and label name, and where it came from."""

    id: str
    text: str
    label: str
    file: str
    location: str


def folder_name(language: Language) -> str:
    """The NusaX folder of ``language``; :class:`FlareError` if NusaX does not cover it."""
    if language.nusax_name is None:
        raise FlareError(f"NusaX-senti has no {language.name} ({language.iso639_3}) data")
    return language.nusax_name


def read_rows(path: Path, issues: Issues) -> list[NusaxRow]:
    """The rows of one NusaX sentiment CSV file."""
    records, _ = read_delimited(path, ("id", "text", "label"), issues)
    return [
        NusaxRow(r.values["id"], r.values["text"], r.values["label"], str(path), r.location)
        for r in records
    ]


def pair_with_english(
    rows: Sequence[NusaxRow],
    english: Sequence[NusaxRow],
    english_file: str,
    language: str,
    issues: Issues,
) -> list[ClassificationExample]:
    """Examples from target rows, each paired by id with its English row (from ``english_file``)."""
    english_by_id = {row.id: row for row in english}
    examples: list[ClassificationExample] = []
    seen: set[str] = set()
    for row in rows:
        try:
            examples.append(_example(row, english_by_id, english_file, seen, language))
        except BadField as bad:
            issues.row(row.file, row.location, bad.field, bad.message)
    unpaired = len(english_by_id.keys() - {row.id for row in rows})
    if unpaired:
        issues.note(f"{unpaired} English rows have no {language} partner (not needed)")
    return examples


def _example(
    row: NusaxRow,
    english_by_id: dict[str, NusaxRow],
    english_file: str,
    seen: set[str],
    language: str,
) -> ClassificationExample:
    if not row.id.strip():
        raise BadField("id", "empty id")
    if row.id in seen:
        raise BadField("id", f"duplicate id {row.id!r}")
    if not row.text.strip():
        raise BadField("text", "empty text")
    if row.label not in LABELS:
        raise BadField("label", f"label {row.label!r} is not one of {', '.join(LABELS)}")
    partner = english_by_id.get(row.id)
    if partner is None:
        raise BadField("id", f"id {row.id!r} has no partner in {english_file}")
    if partner.label != row.label:
        raise BadField(
            "label",
            f"label {row.label!r} differs from {partner.label!r} in {english_file} "
            f"({partner.location})",
        )
    if not partner.text.strip():
        raise BadField("text", f"the English partner is empty ({english_file}, {partner.location})")
    seen.add(row.id)
    label = LABELS.index(row.label)
    return ClassificationExample(row.id, language, (row.text,), label, (partner.text,))


def load_local(
    data_dir: Path, language: Language, split: str, issues: Issues
) -> tuple[list[ClassificationExample], tuple[Path, ...]]:
    """Examples of one split from the local NusaX copy, and the files read."""
    base = data_dir / "nusax" / "sentiment"
    target_path = base / folder_name(language) / f"{SPLIT_FILES[split]}.csv"
    english_path = base / "english" / f"{SPLIT_FILES[split]}.csv"
    rows = read_rows(target_path, issues)
    english = read_rows(english_path, issues)
    examples = pair_with_english(rows, english, str(english_path), language.iso639_3, issues)
    return examples, (target_path, english_path)
