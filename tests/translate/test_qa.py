"""QA answer-span projection with markers, on deterministic toy translators and the tiny model.

No real MT model runs offline, so toy translators implementing the Translator
protocol (uppercasing, reversing word order, dropping or doubling markers)
exercise the projection logic; the tiny random M2M100 checks the bookkeeping
on real (gibberish) model output.
"""

import pytest
from _translate_support import ToyTranslator, tiny_translator
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_xlt.errors import FlareError
from flare_xlt.translate import Markers, QAInput, project_qa
from flare_xlt.translate.qa import extract_answer, mark_answer

MARKERS = Markers()


def qa(id_, context, answer, question="who sat ?"):
    return QAInput(id_, context, question, answer, context.index(answer))


def reverse_words(text: str) -> str:
    return " ".join(reversed(text.split(" ")))


def test_mark_and_extract():
    marked = mark_answer("The cat sat on the mat.", 4, "cat", MARKERS)
    assert marked == "The «cat» sat on the mat."
    assert extract_answer("Le « chat » dort.", MARKERS) == ("Le  chat  dort.", "chat", 4)
    assert extract_answer("no markers", MARKERS) == "lost_markers"
    assert extract_answer("«a» «b»", MARKERS) == "duplicated_markers"
    assert extract_answer("»a«", MARKERS) == "misordered_markers"
    assert extract_answer("a « » b", MARKERS) == "empty_answer"


def test_markers_must_be_distinct():
    with pytest.raises(FlareError):
        Markers("|", "|")
    with pytest.raises(FlareError):
        Markers("<<", "<")


def test_projection_through_an_uppercasing_translator():
    examples = [
        qa("q1", "The cat sat on the mat.", "the mat"),
        qa("q2", "Rivers flow. The king lived in a big city.", "big city"),
    ]
    toy = ToyTranslator(str.upper)
    kept, report = project_qa(examples, toy, "en", "sw")
    assert [k.answer for k in kept] == ["THE MAT", "BIG CITY"]
    assert [k.question for k in kept] == ["WHO SAT ?", "WHO SAT ?"]
    for k in kept:
        assert k.context[k.answer_start : k.answer_start + len(k.answer)] == k.answer
        assert "«" not in k.context and "»" not in k.context
    assert kept[0].context == "THE CAT SAT ON THE MAT."
    assert (report.total, report.kept, report.dropped) == (2, 2, 0)
    # Contexts (marked) and questions are translated in separate calls.
    assert toy.calls[0][0] == "The cat sat on «the mat»." and toy.calls[1][0] == "who sat ?"


def test_lost_duplicated_and_misordered_markers_are_dropped_and_counted():
    def mangle(text: str) -> str:
        if "drop" in text:
            return text.replace("»", "")
        if "twice" in text:
            return text + " «again»"
        if "flip" in text:
            return reverse_words(text)
        return text

    examples = [
        qa("ok", "A fine answer here.", "fine"),
        qa("lost", "We drop the close marker.", "close marker"),
        qa("dup", "Say it twice please.", "twice"),
        qa("flip", "flip the answer span now", "answer span"),
        qa("marked", "A «quoted» context.", "context"),
        QAInput("bad", "The context.", "q", "missing", 0),
        qa("blank", "Empty answer .", " "),
    ]
    kept, report = project_qa(examples, ToyTranslator(mangle), "en", "sw")
    assert [k.id for k in kept] == ["ok"]
    assert report.to_dict() == {
        "total": 7,
        "kept": 1,
        "lost_markers": 1,
        "duplicated_markers": 1,
        "misordered_markers": 1,
        "empty_answer": 0,
        "marker_in_source": 1,
        "misaligned_source": 2,
        "dropped_ids": {
            "lost": "lost_markers",
            "dup": "duplicated_markers",
            "flip": "misordered_markers",
            "marked": "marker_in_source",
            "bad": "misaligned_source",
            "blank": "misaligned_source",
        },
        "dropped": 6,
    }


def test_custom_markers():
    examples = [qa("q", "The «quoted» cat sat.", "cat")]
    kept, report = project_qa(examples, ToyTranslator(str.upper), "en", "sw", Markers("[", "]"))
    assert report.kept == 1 and kept[0].answer == "CAT"
    assert kept[0].context == "THE «QUOTED» CAT SAT."


def test_tiny_model_bookkeeping():
    """Gibberish output loses markers; every example is still either kept or counted."""
    examples = [qa(f"q{i}", f"the cat sat on the mat w{i} .", "the mat") for i in range(6)]
    kept, report = project_qa(examples, tiny_translator(max_new_tokens=12), "en", "sw")
    assert report.total == 6 and report.kept == len(kept)
    assert report.kept + sum(report.drop_reasons().values()) == 6
    assert set(report.dropped_ids) == {ex.id for ex in examples} - {k.id for k in kept}


text_without_markers = st.text(
    alphabet=st.characters(exclude_characters="«»", exclude_categories=("Cs",)), max_size=80
)


@settings(max_examples=200, deadline=None)
@given(text_without_markers, text_without_markers, text_without_markers)
def test_identity_translation_recovers_the_span(before, answer, after):
    example = QAInput("x", before + answer + after, "q", answer, len(before))
    kept, report = project_qa([example], ToyTranslator(lambda t: t), "en", "sw")
    if not answer.strip():
        assert report.misaligned_source == 1 and not kept
        return
    assert report.kept == 1
    (k,) = kept
    assert k.context == example.context
    assert k.answer == answer.strip()
    assert k.context[k.answer_start : k.answer_start + len(k.answer)] == k.answer
