"""Task metrics: accuracy, macro-F1 and SQuAD v1.1 exact match / F1.

Every metric returns a percentage (0-100), the unit the paper and our results
tables use. Classification metrics compare labels with ``==``; a prediction
outside the label set (say, an unparsable generation) simply counts as wrong.
SQuAD scores follow the official v1.1 evaluation script exactly (its answer
normalisation, F1 over whitespace tokens, maximum over the gold answers); the
script is re-implemented here because ``evaluate.load("squad")`` needs the hub.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from flare_xlt.errors import FlareError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def _check_lengths(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    """Raise :class:`FlareError` on empty inputs or a length mismatch."""
    if len(predictions) == 0 or len(references) == 0:
        raise FlareError("cannot score empty predictions or references")
    if len(predictions) != len(references):
        raise FlareError(
            f"got {len(predictions)} predictions but {len(references)} references; "
            "they must pair up one to one"
        )


def accuracy(preds: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
    """Percentage of predictions equal to their label."""
    _check_lengths(preds, labels)
    correct = sum(pred == label for pred, label in zip(preds, labels, strict=True))
    return 100.0 * correct / len(labels)


def macro_f1(
    preds: Sequence[Hashable],
    labels: Sequence[Hashable],
    labels_set: Sequence[Hashable] | None = None,
) -> float:
    """Macro-averaged F1 in percent (scikit-learn, ``average="macro"``).

    ``labels_set`` fixes the classes averaged over (default: every label or
    prediction seen, sorted), so that a class absent from a small test split
    still counts, with F1 0, and scores stay comparable across languages.
    Gold labels outside ``labels_set`` are an error; predictions outside it
    count as wrong.
    """
    from sklearn.metrics import f1_score  # imported here: scikit-learn takes seconds to load

    _check_lengths(preds, labels)
    if labels_set is None:
        classes = sorted(set(labels) | set(preds))
    else:
        classes = list(labels_set)
        if not classes:
            raise FlareError("labels_set is empty")
        unknown = set(labels) - set(classes)
        if unknown:
            raise FlareError(
                f"gold labels {sorted(map(str, unknown))} are not in labels_set {classes}"
            )
    score = f1_score(list(labels), list(preds), labels=classes, average="macro", zero_division=0)
    return 100.0 * float(score)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation and English articles, squash spaces."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 of the normalised strings (0.0 when no token is shared)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    shared = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(pred_tokens)
    recall = shared / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _squad_mean(
    score: Callable[[str, str], float],
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
) -> float:
    """Mean over examples of the best ``score`` against any gold answer, in percent."""
    _check_lengths(predictions, references)
    total = 0.0
    for index, (prediction, golds) in enumerate(zip(predictions, references, strict=True)):
        if isinstance(golds, str) or len(golds) == 0:
            raise FlareError(
                f"reference {index} must be a non-empty list of gold answer strings, got {golds!r}"
            )
        total += max(score(prediction, gold) for gold in golds)
    return 100.0 * total / len(predictions)


def squad_exact_match(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """SQuAD v1.1 exact match in percent; ``references[i]`` lists the gold answers of example i."""
    return _squad_mean(_exact_match, predictions, references)


def squad_f1(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """SQuAD v1.1 token F1 in percent; ``references[i]`` lists the gold answers of example i."""
    return _squad_mean(_token_f1, predictions, references)


def squad_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Both SQuAD v1.1 scores: ``{"exact_match": ..., "f1": ...}`` in percent."""
    return {
        "exact_match": squad_exact_match(predictions, references),
        "f1": squad_f1(predictions, references),
    }


def _named(name: str, metric: Callable[..., float]) -> Callable[..., dict[str, float]]:
    """Wrap a single-score metric so that it returns ``{name: score}``."""

    def scores(predictions: Sequence[Any], references: Sequence[Any], **kwargs: Any):
        return {name: metric(predictions, references, **kwargs)}

    scores.__doc__ = metric.__doc__
    return scores


METRICS: dict[str, Callable[..., dict[str, float]]] = {
    "accuracy": _named("accuracy", accuracy),
    "macro_f1": _named("macro_f1", macro_f1),
    "squad": squad_scores,
}
"""Metrics by name; each maps ``(predictions, references, **kwargs)`` to named scores."""


def compute_metric(
    name: str, predictions: Sequence[Any], references: Sequence[Any], **kwargs: Any
) -> dict[str, float]:
    """Score with the metric registered as ``name``; returns named scores in percent.

    ``kwargs`` go to the metric (e.g. ``labels_set`` for ``macro_f1``).
    """
    if name not in METRICS:
        raise FlareError(f"unknown metric {name!r}; choose one of: {', '.join(sorted(METRICS))}")
    return METRICS[name](predictions, references, **kwargs)
