"""Translating extractive-QA examples while projecting the answer span.

The answer span is wrapped in a pair of markers inside the context (``«`` and
``»`` by default: rare in English Wikipedia, kept by NLLB as punctuation),
the marked context is translated, and the markers are looked up in the
translation: the text between them is the projected answer, and the context
with the markers removed is the translated context. Examples whose markers are
lost, duplicated or out of order in the translation are dropped and counted
in a :class:`ProjectionReport`, never silently. Questions are translated on
their own (unmarked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from flare_xlt.errors import FlareError
from flare_xlt.translate.base import Translator, check_outputs


@dataclass(frozen=True)
class Markers:
    """The strings wrapped around the answer span before translation."""

    open: str = "«"
    close: str = "»"

    def __post_init__(self) -> None:
        if not self.open or not self.close or self.open == self.close:
            raise FlareError(f"answer markers must be two different non-empty strings: {self}")
        if self.open in self.close or self.close in self.open:
            raise FlareError(f"one answer marker contains the other: {self}")


@dataclass(frozen=True)
class QAInput:
    """A QA example to translate: the first answer is projected.

    Attributes:
        id: example id.
        context: the passage.
        question: the question.
        answer: answer text, a substring of ``context``.
        answer_start: character offset of ``answer`` in ``context``.
    """

    id: str
    context: str
    question: str
    answer: str
    answer_start: int


@dataclass(frozen=True)
class ProjectedQA:
    """A translated QA example whose answer span survived translation.

    ``context[answer_start : answer_start + len(answer)] == answer`` always holds.
    """

    id: str
    context: str
    question: str
    answer: str
    answer_start: int
    source: QAInput


_FAILURES = (
    "lost_markers",
    "duplicated_markers",
    "misordered_markers",
    "empty_answer",
    "marker_in_source",
    "misaligned_source",
)


@dataclass
class ProjectionReport:
    """Counts of what happened to each example during answer projection.

    Attributes:
        total: examples given.
        kept: examples with a projected answer.
        lost_markers: a marker is missing from the translation.
        duplicated_markers: a marker occurs more than once in the translation.
        misordered_markers: the closing marker comes before the opening one.
        empty_answer: the markers enclose only whitespace.
        marker_in_source: a marker already occurs in the source context or
            answer, so it could not be located unambiguously (not translated).
        misaligned_source: ``answer`` is empty or not at ``answer_start`` in
            the source context (not translated).
        dropped_ids: ids of all dropped examples, with the reason.
    """

    total: int = 0
    kept: int = 0
    lost_markers: int = 0
    duplicated_markers: int = 0
    misordered_markers: int = 0
    empty_answer: int = 0
    marker_in_source: int = 0
    misaligned_source: int = 0
    dropped_ids: dict[str, str] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        """Examples not kept."""
        return self.total - self.kept

    def record(self, example_id: str, outcome: str) -> None:
        """Count one example's outcome: ``"kept"`` or a failure counter's name."""
        self.total += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome != "kept":
            self.dropped_ids[example_id] = outcome

    def drop_reasons(self) -> dict[str, int]:
        """The non-zero failure counters."""
        return {name: getattr(self, name) for name in _FAILURES if getattr(self, name)}

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable counts (with ``dropped``)."""
        return {**asdict(self), "dropped": self.dropped}


def mark_answer(context: str, start: int, answer: str, markers: Markers) -> str:
    """``context`` with ``answer`` (at ``start``) wrapped in the markers."""
    end = start + len(answer)
    return f"{context[:start]}{markers.open}{answer}{markers.close}{context[end:]}"


def extract_answer(translated: str, markers: Markers) -> tuple[str, str, int] | str:
    """Find the marked span in a translation.

    Returns ``(context, answer, answer_start)`` with the markers removed and the
    answer stripped of surrounding whitespace, or the name of the failure
    (a :class:`ProjectionReport` counter) when the markers are not usable.
    """
    opens, closes = translated.count(markers.open), translated.count(markers.close)
    if opens == 0 or closes == 0:
        return "lost_markers"
    if opens > 1 or closes > 1:
        return "duplicated_markers"
    begin = translated.index(markers.open)
    end = translated.index(markers.close)
    if end < begin:
        return "misordered_markers"
    inner = translated[begin + len(markers.open) : end]
    if not inner.strip():
        return "empty_answer"
    context = translated[:begin] + inner + translated[end + len(markers.close) :]
    answer_start = begin + len(inner) - len(inner.lstrip())
    return context, inner.strip(), answer_start


def _source_problem(example: QAInput, markers: Markers) -> str | None:
    span = example.context[example.answer_start : example.answer_start + len(example.answer)]
    if example.answer_start < 0 or span != example.answer or not example.answer.strip():
        return "misaligned_source"
    if any(m in example.context for m in (markers.open, markers.close)):
        return "marker_in_source"
    return None


def project_qa(
    examples: Sequence[QAInput],
    translator: Translator,
    src_lang: str,
    tgt_lang: str,
    markers: Markers | None = None,
) -> tuple[list[ProjectedQA], ProjectionReport]:
    """Translate QA examples and project their answers; return the kept ones and the counts."""
    markers = markers or Markers()
    report = ProjectionReport()
    problems = [_source_problem(example, markers) for example in examples]
    usable = [ex for ex, problem in zip(examples, problems, strict=True) if problem is None]
    marked = [mark_answer(ex.context, ex.answer_start, ex.answer, markers) for ex in usable]
    questions = [ex.question for ex in usable]
    model = translator.model_id
    contexts = iter(check_outputs(marked, translator.translate(marked, src_lang, tgt_lang), model))
    translated_questions = iter(
        check_outputs(questions, translator.translate(questions, src_lang, tgt_lang), model)
    )
    kept = []
    for example, problem in zip(examples, problems, strict=True):
        if problem is not None:
            report.record(example.id, problem)
            continue
        found = extract_answer(next(contexts), markers)
        question = next(translated_questions)
        if isinstance(found, str):
            report.record(example.id, found)
            continue
        context, answer, start = found
        kept.append(ProjectedQA(example.id, context, question, answer, start, example))
        report.record(example.id, "kept")
    return kept, report
