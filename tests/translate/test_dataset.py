"""translate_dataset: paired JSONL files the parallel loader reads back, with provenance."""

import json

import pytest
from _translate_support import CountingTranslator, ToyTranslator, tiny_translator

from flare_xlt.errors import FlareError
from flare_xlt.tasks import ClassificationExample, QAExample, load_parallel_file
from flare_xlt.translate import (
    CachedTranslator,
    TranslationCache,
    direction_for_split,
    provenance_path,
    translate_dataset,
)

LABELS = ("entailment", "neutral", "contradiction")


def nli(id_, premise, hypothesis, label, language="eng"):
    return ClassificationExample(id_, language, (premise, hypothesis), label)


def qa(id_, context, answer, question="Who sat?", language="eng"):
    return QAExample(id_, language, context, question, (answer,), (context.index(answer),))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_direction_for_split():
    assert direction_for_split("train") == direction_for_split("validation") == "to_target"
    assert direction_for_split("test") == "to_english"
    with pytest.raises(FlareError):
        direction_for_split("dev")


def test_translate_train_classification_pairs(tmp_path):
    examples = [nli("a", "The cat sat.", "A cat sat.", 0), nli("b", "It rains.", "Dry.", 2)]
    output = tmp_path / "xnli.sw.train.jsonl"
    summary = translate_dataset(
        examples,
        ToyTranslator(str.upper),
        output,
        lang="sw",
        direction="to_target",
        task="xnli",
        split="train",
        label_names=LABELS,
    )
    assert (summary.examples, summary.written) == (2, 2)
    assert read_jsonl(output)[0] == {
        "id": "a",
        "source_text": "The cat sat.",
        "target_text": "THE CAT SAT.",
        "label": "entailment",
        "source_text_pair": "A cat sat.",
        "target_text_pair": "A CAT SAT.",
    }
    loaded = load_parallel_file(output, "classification", LABELS, "sw")
    assert [ex.target for ex in loaded] == [("THE CAT SAT.", "A CAT SAT."), ("IT RAINS.", "DRY.")]
    assert [ex.source for ex in loaded] == [("The cat sat.", "A cat sat."), ("It rains.", "Dry.")]
    assert [ex.label for ex in loaded] == [0, 2]

    provenance = json.loads(provenance_path(output).read_text(encoding="utf-8"))
    assert provenance_path(output).name == "xnli.sw.train.jsonl.provenance.json"
    assert provenance["model"] == {"id": "toy", "revision": "v1", "settings": {"mode": "upper"}}
    assert provenance["languages"]["from"]["requested"] == "eng"
    assert provenance["languages"]["to"]["requested"] == "sw"
    assert provenance["source_ids"] == ["a", "b"]
    assert provenance["counts"]["examples"] == 2 and provenance["counts"]["written"] == 2
    assert {"task", "split", "direction", "created", "flare_xlt"} <= set(provenance)


def test_translate_test_goes_into_english(tmp_path):
    examples = [ClassificationExample("t1", "swh", ("Paka ameketi.",), 1)]
    output = tmp_path / "test.jsonl"
    translate_dataset(examples, ToyTranslator(str.upper), output, lang="sw", direction="to_english")
    assert read_jsonl(output) == [
        {"id": "t1", "source_text": "PAKA AMEKETI.", "target_text": "Paka ameketi.", "label": 1}
    ]


def test_translate_train_needs_english_examples(tmp_path):
    examples = [ClassificationExample("x", "swh", ("Paka.",), 0)]
    with pytest.raises(FlareError, match="English"):
        translate_dataset(
            examples, ToyTranslator(), tmp_path / "o.jsonl", lang="sw", direction="to_target"
        )


def test_qa_translate_train_projects_and_counts(tmp_path):
    examples = [
        qa("q1", "The cat sat on the mat.", "the mat"),
        qa("q2", "Rivers flow to the sea.", "the sea"),
    ]

    def upper_but_lose_q2_marker(text):
        return text.upper().replace("»", "") if "Rivers" in text else text.upper()

    output = tmp_path / "qa.jsonl"
    summary = translate_dataset(
        examples, ToyTranslator(upper_but_lose_q2_marker), output, lang="sw", direction="to_target"
    )
    assert summary.projection.kept == 1 and summary.projection.lost_markers == 1
    (record,) = read_jsonl(output)
    assert record == {
        "id": "q1",
        "context": "THE CAT SAT ON THE MAT.",
        "question": "WHO SAT?",
        "answers": [{"text": "THE MAT", "answer_start": 15}],
        "source_context": "The cat sat on the mat.",
        "source_question": "Who sat?",
        "source_answers": [{"text": "the mat", "answer_start": 15}],
    }
    provenance = json.loads(summary.provenance.read_text(encoding="utf-8"))
    assert provenance["counts"]["projection"]["dropped_ids"] == {"q2": "lost_markers"}
    (loaded,) = load_parallel_file(output, "qa", (), "sw")
    assert loaded.answers == ("THE MAT",) and loaded.source_answers == ("the mat",)


def test_qa_translate_test_keeps_every_example_and_answer(tmp_path):
    example = QAExample("t", "swh", "Paka ameketi.", "Nani?", ("Paka", "Paka"), (0, 0))
    output = tmp_path / "qa-test.jsonl"
    summary = translate_dataset(
        [example], ToyTranslator(str.upper), output, lang="sw", direction="to_english"
    )
    assert summary.projection is None
    assert read_jsonl(output)[0]["answers"] == [{"text": "Paka", "answer_start": 0}] * 2
    assert read_jsonl(output)[0]["source_context"] == "PAKA AMEKETI."


def test_empty_translations_are_dropped_and_counted(tmp_path):
    examples = [nli("a", "Keep.", "Keep.", 0), nli("b", "Vanish.", "Keep.", 1)]
    output = tmp_path / "o.jsonl"
    summary = translate_dataset(
        examples,
        ToyTranslator(lambda t: "" if t == "Vanish." else t),
        output,
        lang="sw",
        direction="to_target",
    )
    assert summary.written == 1 and summary.empty_translation_ids == ("b",)
    assert [r["id"] for r in read_jsonl(output)] == ["a"]


def test_tiny_model_with_cache_and_fallback(tmp_path):
    """Real model, cache and an NLLB-less language: the fallback is recorded in the provenance."""
    examples = [nli(str(i), f"the cat sat w{i} .", "the dog sat .", i % 3) for i in range(5)]
    inner = CountingTranslator(tiny_translator(fallback_lang="id"))
    cached = CachedTranslator(inner, TranslationCache(tmp_path / "cache.jsonl"))
    output = tmp_path / "bbc.jsonl"
    translate_dataset(examples, cached, output, lang="bbc", direction="to_target")
    assert inner.texts_translated == 6  # the shared hypothesis is translated once
    provenance = json.loads(provenance_path(output).read_text(encoding="utf-8"))
    assert provenance["languages"]["to"] == {
        "requested": "bbc",
        "iso639_3": "ind",
        "token": "__id__",
        "fallback_used": True,
    }
    assert provenance["cache"]["translated"] == 6
    translate_dataset(examples, cached, tmp_path / "again.jsonl", lang="bbc", direction="to_target")
    assert inner.texts_translated == 6
    assert (tmp_path / "again.jsonl").read_text() == output.read_text()


def test_mixed_or_empty_inputs_are_errors(tmp_path):
    with pytest.raises(FlareError, match="no examples"):
        translate_dataset(
            [], ToyTranslator(), tmp_path / "o.jsonl", lang="sw", direction="to_target"
        )
    mixed = [nli("a", "A.", "B.", 0), qa("q", "The cat.", "cat")]
    with pytest.raises(FlareError, match="all classification or all QA"):
        translate_dataset(
            mixed, ToyTranslator(), tmp_path / "o.jsonl", lang="sw", direction="to_target"
        )
    with pytest.raises(FlareError, match="direction"):
        translate_dataset(mixed, ToyTranslator(), tmp_path / "o.jsonl", lang="sw", direction="up")
