"""Reading a user's unlabeled file: the target texts to predict, optionally with their English.

Classification: ``target_text`` (and ``target_text_pair`` for text-pair tasks);
the English side is ``source_text`` (and ``source_text_pair``). QA:
``context`` and ``question``; the English side is ``source_context`` and
``source_question``. An ``id`` column is optional: without one, a row's id is
its number (1 for the first row; the CSV header and blank lines are no rows).
CSV, TSV and JSONL files are read, with the same checks as
:func:`~flare_xlt.tasks.load_parallel_file` (a bad row is a one-line error naming
the file, line and column); columns the reader does not use are ignored and noted.

The examples carry a placeholder gold side (label 0, or an empty answer at
offset 0), which featurization needs and prediction never reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flare_xlt.tasks.examples import ClassificationExample, Example, QAExample
from flare_xlt.tasks.readers import (
    BadField,
    Record,
    file_error,
    get_id,
    get_text,
    read_delimited,
    read_jsonl,
)
from flare_xlt.tasks.report import Issues, LoadReport

TARGET_COLUMNS = {
    "classification": ("target_text", "target_text_pair"),
    "qa": ("context", "question"),
}
ENGLISH_COLUMNS = {
    "classification": ("source_text", "source_text_pair"),
    "qa": ("source_context", "source_question"),
}
_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".ndjson": None}


@dataclass(frozen=True)
class UnlabeledFile:
    """The rows of an unlabeled file, in file order.

    Attributes:
        path: the file read.
        ids: each row's id: its ``id`` value (a string), else its row number (an int).
        examples: one example per row, with a placeholder gold side.
        report: what was read (rows, ignored columns).
    """

    path: Path
    ids: tuple[str | int, ...]
    examples: tuple[Example, ...]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.examples)


def load_unlabeled_file(
    path: str | Path, kind: str, n_texts: int, language: str, *, english: bool
) -> UnlabeledFile:
    """Every row of an unlabeled ``.csv``, ``.tsv`` or ``.jsonl`` file as an example.

    Args:
        path: the file.
        kind: ``"classification"`` or ``"qa"``.
        n_texts: texts per classification example (1, or 2 for text pairs).
        language: the code recorded as each example's language.
        english: read the English side, whose columns are then required.
    """
    path = Path(path)
    issues = Issues("raise")
    target = TARGET_COLUMNS[kind][:n_texts] if kind == "classification" else TARGET_COLUMNS[kind]
    source = tuple(ENGLISH_COLUMNS[kind][: len(target)]) if english else ()
    records, columns = _records(path, issues)
    missing = [name for name in (*target, *source) if name not in columns]
    if missing:
        why = " (the method reads the English side)" if set(missing) <= set(source) else ""
        raise file_error(
            path,
            "line 1",
            f"missing column(s) {', '.join(missing)}{why}; found {', '.join(columns) or 'none'}",
            field=missing[0],
        )
    ignored = [name for name in columns if name not in ("id", *target, *source)]
    if ignored:
        issues.note(f"ignored columns: {', '.join(ignored)}")
    ids, examples = [], []
    first_line: dict[str | int, int] = {}
    for number, record in enumerate(records, start=1):
        try:
            identifier = _identifier(record, number, "id" in columns, first_line)
            texts = tuple(get_text(record.values, name) for name in target)
            english_texts = tuple(get_text(record.values, name) for name in source) or None
        except BadField as bad:
            issues.row(path, record.location, bad.field, bad.message)
            continue
        first_line[identifier] = record.line
        ids.append(identifier)
        examples.append(_example(kind, str(identifier), language, texts, english_texts))
    if not examples:
        raise file_error(path, "file", "no rows to predict")
    return UnlabeledFile(path, tuple(ids), tuple(examples), issues.report((path,), len(examples)))


def _records(path: Path, issues: Issues) -> tuple[list[Record], list[str]]:
    """The file's records and its columns (a CSV/TSV header; in JSONL, every key in use)."""
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise file_error(path, "file", f"unsupported file type (use {', '.join(_SUFFIXES)})")
    if _SUFFIXES[suffix] is not None:
        return read_delimited(path, (), issues, delimiter=_SUFFIXES[suffix])
    records = read_jsonl(path, issues)
    return records, list(dict.fromkeys(key for record in records for key in record.values))


def _identifier(
    record: Record, number: int, has_id: bool, first_line: dict[str | int, int]
) -> str | int:
    """The row's ``id`` (unique, non-blank) if the file has the column, else ``number``."""
    if not has_id:
        return number
    return get_id(record.values, first_line)


def _example(
    kind: str,
    identifier: str,
    language: str,
    texts: Sequence[str],
    english: Sequence[str] | None,
) -> Example:
    """An example of ``texts`` (and their English) with the placeholder gold side."""
    if kind == "classification":
        source = tuple(english) if english else None
        return ClassificationExample(identifier, language, tuple(texts), 0, source)
    context, question = texts
    source_context, source_question = english or (None, None)
    return QAExample(
        id=identifier,
        language=language,
        context=context,
        question=question,
        answers=("",),
        answer_starts=(0,),
        source_context=source_context,
        source_question=source_question,
        source_answers=("",) if english else None,
    )
