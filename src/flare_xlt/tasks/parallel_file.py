"""Loading a user's own parallel dataset (English source, target language) from one file.

Classification: CSV, TSV or JSONL with ``target_text`` and ``label``, and
optionally ``id``, ``source_text`` (the English side) and, for text-pair tasks,
``target_text_pair`` / ``source_text_pair``. Labels are label names (JSONL may
also give label indices). QA: JSONL with ``context``, ``question`` and
``answers`` (SQuAD ``[{"text", "answer_start"}]`` or Hugging Face
``{"text": [...], "answer_start": [...]}``), optionally ``id``,
``source_context``, ``source_question`` and ``source_answers``; or a SQuAD v1.1
``.json`` file (no English side). Without an ``id`` column, ids are
``<file stem>-<line>``.

In JSONL every key that any record uses is required in every record. Columns
the loader does not know are ignored and listed in the report notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from flare_xlt.errors import FlareError
from flare_xlt.languages import language_code
from flare_xlt.tasks.examples import ClassificationExample, Example, QAExample
from flare_xlt.tasks.prompts import generic_template
from flare_xlt.tasks.readers import (
    BadField,
    Record,
    file_error,
    get_id,
    get_text,
    read_delimited,
    read_jsonl,
)
from flare_xlt.tasks.report import Issues, LoadedSplit
from flare_xlt.tasks.spec import KINDS, TaskSpec
from flare_xlt.tasks.squad import parse_answers, question_record, read_squad, unique_by_id

CLASSIFICATION_FIELDS = (
    "id",
    "source_text",
    "target_text",
    "source_text_pair",
    "target_text_pair",
    "label",
)
QA_FIELDS = (
    "id",
    "context",
    "question",
    "answers",
    "source_context",
    "source_question",
    "source_answers",
)
_DEFAULT_METRIC = {"classification": "accuracy", "qa": "squad"}


def load_parallel_file(
    path: str | Path,
    task_kind: Literal["classification", "qa"],
    label_names: Sequence[str],
    language: str,
    *,
    task_name: str = "custom",
    metric: str | None = None,
    errors: Literal["raise", "skip"] = "raise",
) -> LoadedSplit:
    """Every example of a user's data file, with its :class:`LoadReport`.

    Args:
        path: a ``.csv``, ``.tsv``, ``.jsonl`` / ``.ndjson`` or (QA) SQuAD ``.json`` file.
        task_kind: ``"classification"`` or ``"qa"``.
        label_names: the classes in label-index order (empty for QA).
        language: the target language; a registry code becomes its ISO 639-3 code, any
            other well-formed code (``quy``, ``gn``, ``quy_Latn``) is kept as given, with a
            note logged once (:func:`~flare_xlt.languages.language_code`).
        task_name: the name of the resulting :class:`TaskSpec`.
        metric: default ``accuracy`` for classification, ``squad`` for QA.
        errors: ``"raise"`` on the first bad row, or ``"skip"`` it and report it.

    The split of the result is the file's stem (``train`` for ``train.csv``).
    """
    path = Path(path)
    if task_kind not in KINDS:
        raise FlareError(f"task kind must be one of {KINDS}, not {task_kind!r}")
    issues = Issues(errors)
    if not isinstance(language, str) or not language.strip():
        raise FlareError("a target language code is required")
    language_id = language_code(language)
    labels = tuple(label_names)
    if task_kind == "classification":
        examples, n_texts = _classification(path, labels, language_id, issues)
    else:
        examples, n_texts = _qa(path, language_id, issues), 2
    if not examples:
        raise file_error(path, "file", "no examples (the file has no loadable rows)")
    spec = TaskSpec(
        task_name,
        task_kind,
        labels,
        metric or _DEFAULT_METRIC[task_kind],
        generic_template(task_kind, n_texts, labels),
    )
    report = issues.report((path,), len(examples))
    return LoadedSplit(spec, language_id, path.stem, tuple(examples), report)


def _records(path: Path, issues: Issues, kind: str) -> tuple[list[Record], list[str]]:
    """Records and the columns in use (a CSV/TSV header; in JSONL, every key any record has)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv") and kind == "classification":
        delimiter = "," if suffix == ".csv" else "\t"
        return read_delimited(path, ("target_text", "label"), issues, delimiter=delimiter)
    if suffix in (".jsonl", ".ndjson"):
        records = read_jsonl(path, issues)
        columns = list(dict.fromkeys(key for record in records for key in record.values))
        return records, columns
    allowed = (
        ".csv, .tsv, .jsonl, .ndjson" if kind == "classification" else ".jsonl, .ndjson, .json"
    )
    raise file_error(path, "file", f"unsupported file type for {kind} data (use {allowed})")


def _check_columns(
    path: Path,
    columns: Sequence[str],
    required: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    known: Sequence[str],
    issues: Issues,
) -> None:
    missing = [name for name in required if name not in columns]
    for present, needed in pairs:
        if present in columns and needed not in columns:
            missing.append(needed)
    if missing:
        raise file_error(
            path,
            "columns",
            f"missing column(s) {', '.join(missing)}; found {', '.join(columns)}",
            field=missing[0],
        )
    ignored = [name for name in columns if name not in known]
    if ignored:
        issues.note(f"ignored unknown columns: {', '.join(ignored)}")


def _classification(
    path: Path, labels: tuple[str, ...], language: str, issues: Issues
) -> tuple[list[Example], int]:
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise FlareError("classification needs at least two distinct label names")
    records, columns = _records(path, issues, "classification")
    pairs = [("source_text_pair", "target_text_pair"), ("source_text_pair", "source_text")]
    if "source_text" in columns:
        pairs.append(("target_text_pair", "source_text_pair"))
    _check_columns(path, columns, ("target_text", "label"), pairs, CLASSIFICATION_FIELDS, issues)
    target_fields = ("target_text", "target_text_pair")[: 1 + ("target_text_pair" in columns)]
    source_fields = tuple(f.replace("target", "source") for f in target_fields)
    has_source = "source_text" in columns
    if not has_source:
        issues.note("no source_text column: the examples have no English side")
    examples: list[Example] = []
    first_line: dict[str, int] = {}
    for record in records:
        try:
            identifier = _identifier(record, path, "id" in columns, first_line)
            target = tuple(get_text(record.values, name) for name in target_fields)
            source = (
                tuple(get_text(record.values, name) for name in source_fields)
                if has_source
                else None
            )
            label = _label(record.values.get("label"), labels)
        except BadField as bad:
            issues.row(path, record.location, bad.field, bad.message)
            continue
        first_line[identifier] = record.line
        examples.append(ClassificationExample(identifier, language, target, label, source))
    return examples, len(target_fields)


def _identifier(record: Record, path: Path, has_id: bool, first_line: dict[str, int]) -> str:
    if not has_id:
        return f"{path.stem}-{record.line}"
    return get_id(record.values, first_line)


def _label(value: Any, labels: tuple[str, ...]) -> int:
    if isinstance(value, str) and value in labels:
        return labels.index(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(labels):
        return value
    raise BadField("label", f"label {value!r} is not one of {', '.join(labels)}")


def _qa(path: Path, language: str, issues: Issues) -> list[Example]:
    if path.suffix.lower() == ".json":
        issues.note("SQuAD JSON has no English side")
        records = unique_by_id(read_squad(path, issues), issues)
        return [record.to_example(language) for record in records.values()]
    records, columns = _records(path, issues, "qa")
    pairs = (
        ("source_context", "source_question"),
        ("source_question", "source_context"),
        ("source_answers", "source_context"),
    )
    _check_columns(path, columns, ("context", "question", "answers"), pairs, QA_FIELDS, issues)
    has_source = "source_context" in columns
    if not has_source:
        issues.note("no source_context column: the examples have no English side")
    examples: list[Example] = []
    first_line: dict[str, int] = {}
    for record in records:
        try:
            examples.append(_qa_example(record, path, columns, has_source, first_line, language))
        except BadField as bad:
            issues.row(path, record.location, bad.field, bad.message)
    return examples


def _qa_example(
    record: Record,
    path: Path,
    columns: Sequence[str],
    has_source: bool,
    first_line: dict[str, int],
    language: str,
) -> QAExample:
    values = record.values
    identifier = _identifier(record, path, "id" in columns, first_line)
    context = get_text(values, "context")
    parsed = question_record({**values, "id": identifier}, context, "", str(path), record.location)
    source_context = source_question = source_answers = None
    if has_source:
        source_context = get_text(values, "source_context")
        source_question = get_text(values, "source_question")
        if "source_answers" in columns:
            source_answers, _ = parse_answers(
                values.get("source_answers"), source_context, "source_answers"
            )
    first_line[identifier] = record.line
    return QAExample(
        id=identifier,
        language=language,
        context=context,
        question=parsed.question,
        answers=parsed.answers,
        answer_starts=parsed.answer_starts,
        source_context=source_context,
        source_question=source_question,
        source_answers=source_answers,
    )
