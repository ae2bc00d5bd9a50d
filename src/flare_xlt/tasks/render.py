"""Turning an example's target or source side into model input strings.

Training and evaluation feed FLARE two streams of the same item: the target
side (the real input) and the English source side. :func:`render` gives the
prompt for either side, :func:`render_completion` the text the model should
produce after it (the label word, or the first gold answer).
"""

from __future__ import annotations

from typing import Literal

from flare_xlt.errors import FlareError
from flare_xlt.tasks.examples import ClassificationExample, Example, QAExample
from flare_xlt.tasks.prompts import PromptTemplate

Side = Literal["target", "source"]


def render(example: Example, template: PromptTemplate, side: Side = "target") -> str:
    """The prompt for one side of ``example``; raises :class:`FlareError` if that side is absent."""
    _check_side(side)
    if isinstance(example, ClassificationExample):
        texts = example.target if side == "target" else example.source
        if texts is None:
            raise FlareError(f"example {example.id!r} has no English source side")
        return template.format(*texts)
    if side == "target":
        return template.format(example.context, example.question)
    if not example.has_source:
        raise FlareError(f"example {example.id!r} has no English source side")
    return template.format(example.source_context, example.source_question)


def render_completion(example: Example, template: PromptTemplate, side: Side = "target") -> str:
    """What follows the prompt: the label's verbalizer, or the first gold answer of that side."""
    _check_side(side)
    if isinstance(example, ClassificationExample):
        return template.verbalize(example.label)
    answers = _answers(example, side)
    return answers[0]


def _answers(example: QAExample, side: Side) -> tuple[str, ...]:
    if side == "target":
        return example.answers
    if not example.source_answers:
        raise FlareError(f"example {example.id!r} has no English answers")
    return example.source_answers


def _check_side(side: str) -> None:
    if side not in ("target", "source"):
        raise FlareError(f"side must be 'target' or 'source', not {side!r}")
