"""Training and scoring a classification model on features (shared by stage 1 and stage 2)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from torch import nn

from flare_xlt.evaluate import compute_metric
from flare_xlt.recipes.training import TrainArgs, TrainingArguments, TrainResult, train


def score(
    model: nn.Module,
    features: list[dict],
    scorer,
    collate,
    metric: str,
    batch_size: int,
    progress: bool = True,
    description: str = "evaluating",
) -> tuple[float, float, dict[str, float]]:
    """``(main value in percent, seconds, every value)`` of ``model`` on labelled ``features``.

    For QA (metric ``squad``) the main value is exact match, the scorer's ``metric_key``;
    F1 is among the other values. Macro-F1 averages over all ``scorer.num_classes``
    classes, so a class that no example has, gold or predicted, counts with F1 0.
    """
    start = time.perf_counter()
    predictions = scorer.predict(model, features, collate, batch_size, progress, description)
    classes = {"labels_set": range(scorer.num_classes)} if metric == "macro_f1" else {}
    values = compute_metric(metric, predictions, scorer.references(features), **classes)
    return values[scorer.metric_key or metric], time.perf_counter() - start, values


def fit(
    model: nn.Module,
    train_features: list[dict],
    validation_features: list[dict],
    scorer,
    collate,
    metric: str,
    args: TrainArgs,
    output_dir: Path,
    eval_batch_size: int,
    progress: bool = True,
    run_settings: dict | None = None,
) -> TrainResult:
    """Train ``model`` with early stopping on the validation metric (higher is better).

    ``run_settings`` (data, prompt, adapter: what else the result depends on) must match
    for ``output_dir``'s checkpoint or finished run to be resumed or reused.
    """

    def validation_metric(trained: nn.Module) -> float:
        value, _, _ = score(
            trained,
            validation_features,
            scorer,
            collate,
            metric,
            eval_batch_size,
            progress,
            "validation",
        )
        return value

    arguments = TrainingArguments(
        output_dir=output_dir, progress=progress, run_settings=run_settings or {}, **asdict(args)
    )
    return train(
        model,
        train_features,
        collate,
        arguments,
        eval_fn=validation_metric if validation_features else None,
        loss_fn=scorer.loss,
    )
