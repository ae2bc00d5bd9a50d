"""Training and scoring a classification model on features (shared by stage 1 and stage 2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from flare_xlt.evaluate import compute_metric
from flare_xlt.training.args import TrainArgs, TrainingArguments
from flare_xlt.training.loop import train
from flare_xlt.training.resume import TrainResult


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


@dataclass
class FitSetup:
    """What :func:`fit` trains and how: the model, its features, scoring and settings.

    Attributes:
        model: the model to train (in place).
        train: training features; ``validation``: the features early stopping scores
            (none: no evaluation, the last weights are kept).
        scorer: gives the training loss (``scorer.loss``) and the predictions to score.
        collate: features -> batch.
        metric: the validation metric (higher is better).
        args: the stage's training settings; ``output_dir``: where the run lives.
        eval_batch_size: batch size of validation scoring.
        progress: show progress bars.
        run_settings: data, prompt, adapter: what else the result depends on; they must
            match for ``output_dir``'s checkpoint or finished run to be resumed or reused.
    """

    model: nn.Module
    train: list[dict]
    validation: list[dict]
    scorer: Any
    collate: Callable[[list[dict]], dict]
    metric: str
    args: TrainArgs
    output_dir: Path
    eval_batch_size: int
    progress: bool = True
    run_settings: dict = field(default_factory=dict)


def fit(setup: FitSetup) -> TrainResult:
    """Train ``setup.model`` with early stopping on the validation metric."""

    def validation_metric(trained: nn.Module) -> float:
        value, _, _ = score(
            trained,
            setup.validation,
            setup.scorer,
            setup.collate,
            setup.metric,
            setup.eval_batch_size,
            setup.progress,
            "validation",
        )
        return value

    arguments = TrainingArguments(
        output_dir=setup.output_dir,
        progress=setup.progress,
        run_settings=setup.run_settings,
        **asdict(setup.args),
    )
    return train(
        setup.model,
        setup.train,
        setup.collate,
        arguments,
        eval_fn=validation_metric if setup.validation else None,
        loss_fn=setup.scorer.loss,
    )
