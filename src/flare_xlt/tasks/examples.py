"""The data model shared by every task: one frozen example per labelled item.

An example holds the target-language input (what the model is evaluated on)
and, where one exists, its English *source* side (the auxiliary stream FLARE
fuses in). The ``language`` of an example is the ISO 639-3 code of its target
side, or the code as the user gave it for languages outside the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from flare_xlt.errors import FlareError


@dataclass(frozen=True)
class ClassificationExample:
    """A classification item: one text (sentiment) or a text pair (NLI) per side.

    Attributes:
        id: identifier, shared by the translations of the same item.
        language: ISO 639-3 code of the target side.
        target: the target-language texts, e.g. ``(text,)`` or ``(premise, hypothesis)``.
        label: index into the task's ``label_names``.
        source: the English texts, parallel to ``target``; None where no English side exists.
    """

    id: str
    language: str
    target: tuple[str, ...]
    label: int
    source: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.target:
            raise FlareError(f"example {self.id!r}: target has no texts")
        if self.source is not None and len(self.source) != len(self.target):
            raise FlareError(
                f"example {self.id!r}: source has {len(self.source)} texts, "
                f"target has {len(self.target)}"
            )
        if self.label < 0:
            raise FlareError(f"example {self.id!r}: label index {self.label} is negative")


@dataclass(frozen=True)
class QAExample:
    """An extractive QA item (SQuAD v1.1 style), with an optional English side.

    Attributes:
        id: question id, shared by the translations of the same question.
        language: ISO 639-3 code of the target side.
        context: the target-language passage.
        question: the target-language question.
        answers: gold answer texts (at least one), each a span of ``context``.
        answer_starts: character offset of each answer in ``context``.
        source_context: the English passage, or None.
        source_question: the English question, or None.
        source_answers: the English gold answers, or None.
    """

    id: str
    language: str
    context: str
    question: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    source_context: str | None = None
    source_question: str | None = None
    source_answers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.answers:
            raise FlareError(f"example {self.id!r}: no answers")
        if len(self.answers) != len(self.answer_starts):
            raise FlareError(
                f"example {self.id!r}: {len(self.answers)} answers but "
                f"{len(self.answer_starts)} answer starts"
            )

    @property
    def has_source(self) -> bool:
        """Whether the English passage and question are present."""
        return self.source_context is not None and self.source_question is not None


Example = ClassificationExample | QAExample
