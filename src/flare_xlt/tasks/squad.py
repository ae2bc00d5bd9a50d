"""SQuAD v1.1 question records: parsing, answer checks and conversion to :class:`QAExample`.

TyDiQA-GoldP, XQuAD and users' own QA files share this format (nested
``data[].paragraphs[].qas[]``, or one flat record per question). Every answer
must be the exact span of the context that its ``answer_start`` points to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flare_xlt.tasks.examples import QAExample
from flare_xlt.tasks.readers import BadField, get_text, read_json
from flare_xlt.tasks.report import Issues


@dataclass(frozen=True)
class QARecord:
    """One parsed, checked question: target-side fields plus where it came from."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    file: str
    location: str

    def to_example(self, language: str, source: QARecord | None = None) -> QAExample:
        """The :class:`QAExample`, with ``source`` (the English partner) as its source side."""
        return QAExample(
            id=self.id,
            language=language,
            context=self.context,
            question=self.question,
            answers=self.answers,
            answer_starts=self.answer_starts,
            source_context=source.context if source else None,
            source_question=source.question if source else None,
            source_answers=source.answers if source else None,
        )


def parse_answers(
    value: Any, context: str, field: str = "answers"
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Answer texts and starts, from SQuAD or Hugging Face style answers.

    ``value`` is ``[{text, answer_start}, ...]`` or ``{text: [...], answer_start: [...]}``.

    Raises :class:`BadField` unless there is at least one answer and each is the
    span of ``context`` at its ``answer_start``.
    """
    if isinstance(value, dict) and set(value) >= {"text", "answer_start"}:
        texts, starts = value["text"], value["answer_start"]
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise BadField(field, "'text' and 'answer_start' must be lists of equal length")
        pairs = list(zip(texts, starts, strict=True))
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        if not all({"text", "answer_start"} <= set(item) for item in value):
            raise BadField(field, "each answer needs 'text' and 'answer_start'")
        pairs = [(item["text"], item["answer_start"]) for item in value]
    else:
        raise BadField(field, "expected a list of {text, answer_start} objects")
    if not pairs:
        raise BadField(field, "no answers")
    for text, start in pairs:
        if not isinstance(text, str) or not text:
            raise BadField(field, f"answer text must be non-empty text, found {text!r}")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise BadField(field, f"answer_start must be a non-negative integer, found {start!r}")
        found = context[start : start + len(text)]
        if found != text:
            raise BadField(
                field,
                f"answer_start {start} does not match the context: answer {text!r}, "
                f"context there {found!r}",
            )
    return tuple(text for text, _ in pairs), tuple(start for _, start in pairs)


def question_record(
    values: dict[str, Any], context: str, title: str, file: str, location: str
) -> QARecord:
    """A :class:`QARecord` from one question's fields; raises :class:`BadField`."""
    identifier = values.get("id")
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        identifier = str(identifier)
    if not isinstance(identifier, str) or not identifier.strip():
        raise BadField("id", f"missing or invalid id {identifier!r}")
    question = get_text(values, "question")
    texts, starts = parse_answers(values.get("answers"), context)
    return QARecord(identifier, title, context, question, texts, starts, file, location)


def read_squad(path: Path, issues: Issues) -> list[QARecord]:
    """Every question of a SQuAD v1.1 JSON file; bad questions and paragraphs go to ``issues``."""
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        issues.row(path, "top level", "data", "expected an object with a 'data' list")
        return []
    records: list[QARecord] = []
    for a, article in enumerate(document["data"]):
        where = f"data[{a}]"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            issues.row(path, where, "paragraphs", "expected a list of paragraphs")
            continue
        title = article.get("title") if isinstance(article.get("title"), str) else ""
        for p, paragraph in enumerate(paragraphs):
            records += _paragraph(path, f"{where}.paragraphs[{p}]", paragraph, title, issues)
    return records


def _paragraph(
    path: Path, where: str, paragraph: Any, title: str, issues: Issues
) -> list[QARecord]:
    if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
        issues.row(path, where, "qas", "expected a paragraph with a 'qas' list")
        return []
    try:
        context = get_text(paragraph, "context")
    except BadField as bad:
        issues.row(path, where, bad.field, bad.message)
        return []
    records = []
    for q, qa in enumerate(paragraph["qas"]):
        location = f"{where}.qas[{q}]"
        try:
            if not isinstance(qa, dict):
                raise BadField(None, "expected a question object")
            records.append(question_record(qa, context, title, str(path), location))
        except BadField as bad:
            issues.row(path, location, bad.field, bad.message)
    return records


def unique_by_id(records: list[QARecord], issues: Issues) -> dict[str, QARecord]:
    """Records by id; a repeated id is a row error (the first occurrence is kept)."""
    by_id: dict[str, QARecord] = {}
    for record in records:
        if record.id in by_id:
            first = by_id[record.id]
            issues.row(
                record.file,
                record.location,
                "id",
                f"duplicate id {record.id!r} (first at {first.location})",
            )
            continue
        by_id[record.id] = record
    return by_id
