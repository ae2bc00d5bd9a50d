"""Prompt templates, task specs and the example data model."""

from __future__ import annotations

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.tasks import (
    TASKS,
    ClassificationExample,
    PromptTemplate,
    QAExample,
    generic_template,
    get_task_spec,
    get_template,
)

NLI = ClassificationExample(
    "dev-0", "swh", ("Naam, sikukuwa", "Sijaongea"), 2, ("Well, I wasn't", "I didn't speak")
)
QA = QAExample(
    "q1",
    "deu",
    "Er hat 308 Punkte.",
    "Wie viele?",
    ("308",),
    (8,),
    "He had 308 points.",
    "How many?",
    ("308",),
)


def test_paper_templates():
    xnli = get_template("xnli")
    assert xnli.format(*NLI.target) == "Premise: Naam, sikukuwa\nHypothesis: Sijaongea\nLabel: "
    assert xnli.format(*NLI.source) == (
        "Premise: Well, I wasn't\nHypothesis: I didn't speak\nLabel: "
    )
    assert xnli.verbalize(NLI.label) == "contradiction"
    sentiment = get_template("nusax_senti")
    assert sentiment.format("Enak") == "Enak\nSentiment: "
    assert sentiment.verbalize(2) == "positive"
    qa = get_template("tydiqa")
    assert qa.format(QA.context, QA.question) == (
        "Context: Er hat 308 Punkte.\nQuestion: Wie viele?\nAnswer: "
    )


def test_prompt_language_is_separate_from_data_language():
    indonesian = get_template("nusax_senti", prompt_language="id")
    assert indonesian.format("Enak") == "Enak\nSentimen: "
    assert indonesian.verbalize(0) == "negatif"
    assert get_template("nusax_senti", "indonesian") is indonesian
    with pytest.raises(FlareError, match="available prompt languages: eng"):
        get_template("xnli", "sw")
    with pytest.raises(FlareError, match="no prompt templates for task"):
        get_template("nope")


def test_texts_are_inserted_verbatim():
    template = get_template("xnli")
    assert (
        template.format("{premise}", "{0} }{") == "Premise: {premise}\nHypothesis: {0} }{\nLabel: "
    )


def test_template_checks():
    with pytest.raises(FlareError, match="do not match"):
        PromptTemplate("{a} {b}", ("a",))
    with pytest.raises(FlareError, match="needs 2 texts"):
        get_template("xnli").format("only one")
    with pytest.raises(FlareError, match="no verbalizer"):
        get_template("xnli").verbalize(3)


def test_generic_templates():
    single = generic_template("classification", 1, ("no", "yes"))
    assert single.format("hi") == "hi\nLabel: "
    assert single.verbalizers == ("no", "yes")
    pair = generic_template("classification", 2, ("a", "b", "c"))
    assert pair.format("x", "y") == "Text 1: x\nText 2: y\nLabel: "
    assert generic_template("qa", 2, ()) is get_template("xquad")
    with pytest.raises(FlareError, match="one or two texts"):
        generic_template("classification", 3, ("a", "b"))


def test_task_specs():
    assert set(TASKS) == {"nusax_senti", "xnli", "tydiqa", "xquad"}
    assert get_task_spec("NusaX-Senti").metric == "macro_f1"
    xnli = get_task_spec("xnli")
    assert (xnli.kind, xnli.metric) == ("classification", "accuracy")
    assert xnli.label_names == xnli.prompt.verbalizers
    assert get_task_spec("tydiqa").metric == "squad"
    with pytest.raises(FlareError, match="did you mean xnli"):
        get_task_spec("xnl")


def test_example_invariants():
    with pytest.raises(FlareError, match="source has 1 texts"):
        ClassificationExample("1", "jav", ("a", "b"), 0, ("a",))
    with pytest.raises(FlareError, match="no texts"):
        ClassificationExample("1", "jav", (), 0)
    with pytest.raises(FlareError, match="no answers"):
        QAExample("1", "swh", "c", "q", (), ())
    with pytest.raises(FlareError, match="answer starts"):
        QAExample("1", "swh", "c", "q", ("c",), (0, 1))
