"""XQuAD: SQuAD v1.1 questions professionally translated from English into 11 languages.

Local layout: ``<data>/xquad/xquad.<xx>.json`` (SQuAD v1.1 JSON). Question ids
are shared, so each target question is paired by id with its English question
in ``xquad.en.json`` (human English); an id missing there is a row error.
XQuAD is a single 1190-question set; train / validation / test are cut from it
by English passage (see :mod:`flare_xlt.tasks.splits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.languages import Language
from flare_xlt.tasks.examples import QAExample
from flare_xlt.tasks.readers import file_error
from flare_xlt.tasks.report import Issues
from flare_xlt.tasks.splits import xquad_selection
from flare_xlt.tasks.squad import QARecord, read_squad, unique_by_id


def language_code(language: Language) -> str:
    """The two-letter code XQuAD uses for ``language``."""
    if language.iso639_1 is None:
        raise FlareError(f"XQuAD has no {language.name} ({language.iso639_3}) data")
    return language.iso639_1


def build(
    target: Sequence[QARecord],
    english: Sequence[QARecord],
    english_file: str,
    language: str,
    split: str,
    issues: Issues,
) -> list[QAExample]:
    """Examples of ``split``: target questions paired by id with their English questions."""
    english_by_id = unique_by_id(list(english), issues)
    target_by_id = english_by_id if target is english else unique_by_id(list(target), issues)
    english_records = list(english_by_id.values())
    in_split = {
        english_records[i].id for i in xquad_selection([r.context for r in english_records], split)
    }
    examples = []
    for record in target_by_id.values():
        if record.id not in english_by_id:
            issues.row(
                record.file,
                record.location,
                "id",
                f"id {record.id!r} has no partner in {english_file}",
            )
        elif record.id in in_split:
            examples.append(record.to_example(language, english_by_id[record.id]))
    return examples


def load_local(
    data_dir: Path, language: Language, split: str, issues: Issues
) -> tuple[list[QAExample], tuple[Path, ...]]:
    """Examples of one split from the local XQuAD copy, and the files read."""
    code = language_code(language)
    base = data_dir / "xquad"
    path = base / f"xquad.{code}.json"
    english_path = base / "xquad.en.json"
    if not path.is_file():
        available = sorted(p.name.split(".")[1] for p in base.glob("xquad.*.json"))
        raise file_error(path, "file", f"file not found (local XQuAD languages: {available})")
    target = read_squad(path, issues)
    english = target if english_path == path else read_squad(english_path, issues)
    examples = build(target, english, str(english_path), language.iso639_3, split, issues)
    return examples, tuple(dict.fromkeys((path, english_path)))
