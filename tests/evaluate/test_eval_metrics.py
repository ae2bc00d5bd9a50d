"""Metrics against hand-computed values and the official SQuAD v1.1 script's semantics."""

import re
import string
import warnings
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from flare_xlt.errors import FlareError
from flare_xlt.evaluate import (
    METRICS,
    accuracy,
    compute_metric,
    macro_f1,
    normalize_answer,
    squad_exact_match,
    squad_f1,
    squad_scores,
)


def official_normalize(s):
    """normalize_answer as in the official SQuAD v1.1 evaluate-v1.1.py (oracle for tests)."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def official_f1(prediction, ground_truth):
    """f1_score as in the official SQuAD v1.1 script (oracle for tests)."""
    prediction_tokens = official_normalize(prediction).split()
    ground_truth_tokens = official_normalize(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def test_accuracy_percent():
    assert accuracy(["a", "b", "c", "a"], ["a", "b", "a", "a"]) == 75.0
    assert accuracy([1, 2], [1, 2]) == 100.0


def test_macro_f1_counts_an_absent_class_as_zero():
    labels, preds = [0, 0, 1, 1], [0, 1, 1, 1]
    # class 0: P=1, R=1/2, F1=2/3; class 1: P=2/3, R=1, F1=4/5; class 2: absent, F1=0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UndefinedMetricWarning for the absent class
        score = macro_f1(preds, labels, labels_set=[0, 1, 2])
    assert score == pytest.approx(100 * (2 / 3 + 4 / 5 + 0) / 3)
    expected = f1_score(labels, preds, labels=[0, 1, 2], average="macro", zero_division=0)
    assert score == pytest.approx(100 * expected)
    assert macro_f1(preds, labels) == pytest.approx(100 * (2 / 3 + 4 / 5) / 2)


def test_macro_f1_matches_sklearn_on_strings():
    labels = ["positive", "negative", "neutral", "negative", "positive", "positive"]
    preds = ["positive", "neutral", "neutral", "negative", "negative", "positive"]
    expected = f1_score(labels, preds, average="macro")
    assert macro_f1(preds, labels) == pytest.approx(100 * expected)


def test_macro_f1_prediction_outside_label_set_counts_as_wrong():
    score = macro_f1(["yes", "??"], ["yes", "no"], labels_set=["yes", "no"])
    # yes: P=1, R=1 -> 1; no: never predicted -> 0
    assert score == pytest.approx(50.0)


def test_macro_f1_rejects_gold_label_outside_label_set():
    with pytest.raises(FlareError, match="not in labels_set"):
        macro_f1(["a"], ["z"], labels_set=["a", "b"])
    with pytest.raises(FlareError, match="empty"):
        macro_f1(["a"], ["a"], labels_set=[])


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Cat", "cat"),
        ("  A  big\tdog. ", "big dog"),
        ("U.S.A.", "usa"),
        ("don't stop!", "dont stop"),
        ("theatre and another anthem", "theatre and another anthem"),
        ("An apple, the pear and a plum", "apple pear and plum"),
        ("the", ""),
    ],
)
def test_normalize_answer(text, normalised):
    assert normalize_answer(text) == normalised
    assert official_normalize(text) == normalised


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1"),
    [
        ("The Cat", ["cat"], 100.0, 100.0),
        # pred "cat sat" (2 tokens) vs gold "cat sat on mat" (4): P=1, R=1/2, F1=2/3
        ("the cat sat", ["cat sat on mat"], 0.0, 200 / 3),
        ("Paris!", ["paris"], 100.0, 100.0),
        ("1,000 people", ["1000 people."], 100.0, 100.0),
        # max over golds: "red dog" gives F1 4/5, "big dog house" gives 2/3
        ("a big red dog", ["red dog", "big dog house"], 0.0, 80.0),
        ("Denver Broncos", ["Broncos", "the Denver Broncos", "Denver"], 100.0, 100.0),
        # repeated tokens are clipped: "cat cat" vs "cat": P=1/2, R=1, F1=2/3
        ("the cat cat", ["cat"], 0.0, 200 / 3),
        ("", ["cat"], 0.0, 0.0),
        # official quirk: both normalise to "", which is an exact match with F1 0
        ("the", ["a"], 100.0, 0.0),
    ],
)
def test_squad_single_examples(prediction, golds, em, f1):
    assert squad_exact_match([prediction], [golds]) == pytest.approx(em)
    assert squad_f1([prediction], [golds]) == pytest.approx(f1)
    assert max(official_f1(prediction, gold) for gold in golds) * 100 == pytest.approx(f1)


def test_squad_scores_average_over_examples():
    scores = squad_scores(["The Cat", "the cat sat"], [["cat"], ["cat sat on mat"]])
    assert scores == pytest.approx({"exact_match": 50.0, "f1": (100 + 200 / 3) / 2})


_WORDS = st.sampled_from(["the", "a", "an", "The", "cat", "Cat.", "sat", "on", "mat!", "x-y", "é"])
_TEXT = st.lists(_WORDS, max_size=6).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(prediction=_TEXT, golds=st.lists(_TEXT, min_size=1, max_size=3))
def test_squad_f1_agrees_with_official_script(prediction, golds):
    expected = 100 * max(official_f1(prediction, gold) for gold in golds)
    assert squad_f1([prediction], [golds]) == pytest.approx(expected)
    expected_em = 100 * max(
        float(official_normalize(prediction) == official_normalize(gold)) for gold in golds
    )
    assert squad_exact_match([prediction], [golds]) == expected_em


@pytest.mark.parametrize("metric", [accuracy, macro_f1, squad_exact_match, squad_f1])
def test_empty_or_mismatched_inputs_are_errors(metric):
    with pytest.raises(FlareError, match="empty"):
        metric([], [])
    with pytest.raises(FlareError, match="2 predictions but 1 references"):
        metric(["a", "b"], [["a"]])


@pytest.mark.parametrize("golds", [[], "cat"])
def test_squad_reference_must_be_a_list_of_answers(golds):
    with pytest.raises(FlareError, match="non-empty list"):
        squad_scores(["cat"], [golds])


def test_compute_metric_by_name():
    assert set(METRICS) == {"accuracy", "macro_f1", "squad"}
    assert compute_metric("accuracy", [1, 0], [1, 1]) == {"accuracy": 50.0}
    result = compute_metric("macro_f1", [0, 0, 1, 1], [0, 0, 1, 1], labels_set=[0, 1, 2])
    assert result == {"macro_f1": pytest.approx(200 / 3)}
    assert compute_metric("squad", ["The Cat"], [["cat"]]) == {"exact_match": 100.0, "f1": 100.0}


def test_compute_metric_unknown_name_lists_valid_ones():
    with pytest.raises(FlareError, match="accuracy, macro_f1, squad"):
        compute_metric("bleu", ["a"], ["a"])
