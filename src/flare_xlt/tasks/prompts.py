"""Prompt templates for LLMs: the words around the data, and the label words.

The prompt language (the template's own words, "Premise:", "Sentiment:") is
independent of the data language: a Javanese NusaX text can be wrapped in the
English template (the paper's choice, and the default) or in the Indonesian
one. Templates are registered by (task, prompt language); the English ones are
those of the paper (see docs/METHOD.md).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from flare_xlt.errors import FlareError
from flare_xlt.languages import resolve_language


@dataclass(frozen=True)
class PromptTemplate:
    """A ``str.format`` template with named fields, plus one verbalizer per label.

    Attributes:
        template: e.g. ``"Premise: {premise}\\nHypothesis: {hypothesis}\\nLabel: "``.
        fields: the field names in the order :meth:`format` takes the texts.
        verbalizers: the word for each label index (empty for QA, whose
            completion is the answer itself).
        language: ISO 639-3 code of the template's words.
    """

    template: str
    fields: tuple[str, ...]
    verbalizers: tuple[str, ...] = ()
    language: str = "eng"

    def __post_init__(self) -> None:
        used = [name for _, name, _, _ in string.Formatter().parse(self.template) if name]
        if sorted(used) != sorted(self.fields):
            raise FlareError(
                f"prompt template fields {used} do not match the declared fields {self.fields}"
            )

    def format(self, *texts: str) -> str:
        """The prompt for ``texts``, given in the order of :attr:`fields`.

        Texts are inserted verbatim: braces, newlines and control characters in
        them are not interpreted.
        """
        if len(texts) != len(self.fields):
            raise FlareError(
                f"prompt needs {len(self.fields)} texts ({', '.join(self.fields)}), "
                f"got {len(texts)}"
            )
        return self.template.format(**dict(zip(self.fields, texts, strict=True)))

    def verbalize(self, label: int) -> str:
        """The label word for label index ``label``."""
        if not 0 <= label < len(self.verbalizers):
            raise FlareError(
                f"label index {label} has no verbalizer (template has {len(self.verbalizers)})"
            )
        return self.verbalizers[label]


_QA = PromptTemplate("Context: {context}\nQuestion: {question}\nAnswer: ", ("context", "question"))

_TEMPLATES: dict[tuple[str, str], PromptTemplate] = {
    ("xnli", "eng"): PromptTemplate(
        "Premise: {premise}\nHypothesis: {hypothesis}\nLabel: ",
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
    ),
    ("nusax_senti", "eng"): PromptTemplate(
        "{text}\nSentiment: ", ("text",), ("negative", "neutral", "positive")
    ),
    ("nusax_senti", "ind"): PromptTemplate(
        "{text}\nSentimen: ", ("text",), ("negatif", "netral", "positif"), language="ind"
    ),
    ("tydiqa", "eng"): _QA,
    ("xquad", "eng"): _QA,
}


def get_template(task: str, prompt_language: str = "en") -> PromptTemplate:
    """The registered template of a built-in task in a prompt language (English by default)."""
    language = resolve_language(prompt_language).iso639_3
    if (task, language) in _TEMPLATES:
        return _TEMPLATES[task, language]
    available = sorted(lang for name, lang in _TEMPLATES if name == task)
    if not available:
        known = sorted({name for name, _ in _TEMPLATES})
        raise FlareError(f"no prompt templates for task {task!r}; tasks with templates: {known}")
    raise FlareError(
        f"no {language} prompt template for task {task!r}; available prompt languages: "
        f"{', '.join(available)}"
    )


def generic_template(kind: str, n_texts: int, label_names: Sequence[str]) -> PromptTemplate:
    """An English template for a user's own task: the label names are the verbalizers.

    Classification takes one text (``"{text}\\nLabel: "``) or a pair; QA uses the
    paper's QA template.
    """
    if kind == "qa":
        return _QA
    if n_texts == 1:
        return PromptTemplate("{text}\nLabel: ", ("text",), tuple(label_names))
    if n_texts == 2:
        return PromptTemplate(
            "Text 1: {text}\nText 2: {text_pair}\nLabel: ",
            ("text", "text_pair"),
            tuple(label_names),
        )
    raise FlareError(f"classification takes one or two texts per example, not {n_texts}")
