"""Labelling a user's own unlabeled file with a trained method (``flare predict``).

The input is read by :func:`~flare_xlt.tasks.unlabeled_file.load_unlabeled_file`
(target texts, and the English side for the methods that read it). The output
is one JSON line per input row, in input order: ``id``, then for
classification the predicted ``label`` and the ``probabilities`` of every
class (a softmax over the class logits the scorer computes: the label words'
logits for an LLM, the head's for an encoder), for QA the ``answer``. Writing
is batched and resumable (:mod:`flare_xlt.recipes.prediction_file`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from flare_xlt.errors import FlareError
from flare_xlt.fileio import sha256_file
from flare_xlt.model import FlareModel
from flare_xlt.recipes.config import ExperimentConfig
from flare_xlt.recipes.data import prompt_template, task_spec
from flare_xlt.recipes.methods import Method, get_method
from flare_xlt.recipes.prediction_file import (
    append_lines,
    directory_digest,
    prepare_output,
    record_path,
)
from flare_xlt.recipes.scoring import predict_in_order
from flare_xlt.recipes.stage1 import run_stage1
from flare_xlt.recipes.stage2 import MethodSetup, check_adapter_method, prepare_method
from flare_xlt.recipes.target_only import check_target_only, without_english
from flare_xlt.tasks import TaskSpec, UnlabeledFile, load_unlabeled_file

logger = logging.getLogger("flare_xlt")

BATCHES_PER_WRITE = 16  # rows are appended to the output every this many batches


@dataclass(frozen=True)
class PredictionSummary:
    """What :func:`predict` did.

    Attributes:
        output: the predictions file.
        record: its ``.run.json`` record.
        rows: input rows, and so lines of the finished output.
        predicted: rows predicted by this call (fewer when an earlier run was resumed).
    """

    output: Path
    record: Path
    rows: int
    predicted: int


def predict(
    config: ExperimentConfig,
    method: str,
    input_path: str | Path,
    output_path: str | Path,
    *,
    adapter_dir: str | Path | None = None,
    language: str | None = None,
    target_only: bool = False,
    progress: bool = True,
) -> PredictionSummary:
    """Predict every row of ``input_path`` with ``method`` and write them to ``output_path``.

    Args:
        config: the experiment the adapter comes from (backbone, task, data settings,
            stage-1 model, which is trained first if it is not there yet).
        method: the method the adapter was trained with (or ``zero_shot``/``translate_test``).
        input_path: a CSV, TSV or JSONL file of target texts; ``flare``,
            ``translate_test``, ``input_fusion`` and ``x_mixup`` also need the English.
        output_path: the JSONL file to write; an unfinished one of the same run is resumed.
        adapter_dir: the saved adapter (methods that train one).
        language: the target language; default the config's only language.
        target_only: run a FLARE adapter on the target text alone (the input needs no
            English; see :mod:`flare_xlt.recipes.target_only`).
        progress: show a progress bar.
    """
    config = _one_cell(config, method, language)
    chosen = get_method(method)
    if target_only:
        check_target_only(chosen)
    adapter = Path(adapter_dir) if adapter_dir is not None else None
    if chosen.trains and adapter is None:
        raise FlareError(f"method {method!r} trains an adapter: pass --adapter DIR")
    if adapter is not None:
        check_adapter_method(adapter, chosen)
    language = config.languages[0]
    spec = task_spec(config)
    n_texts = len(spec.prompt.fields) if spec.kind == "classification" else 2
    rows = load_unlabeled_file(
        input_path, spec.kind, n_texts, language, english=chosen.uses_english and not target_only
    )
    logger.info("predict %s: %s", method, rows.report.summary())
    output = Path(output_path)
    paths = {
        "input": str(rows.path.resolve()),
        "adapter": str(adapter.resolve()) if adapter is not None else None,
    }
    identity = _identity(config, chosen, spec, rows, adapter, target_only)
    done = prepare_output(output, identity, rows.ids, paths)
    summary = PredictionSummary(output, record_path(output), len(rows), len(rows) - done)
    if done == len(rows):
        logger.info("%s: all %d rows are predicted already", output, len(rows))
        return summary
    if done:
        logger.info("%s: resuming after row %d of %d", output, done, len(rows))
    setup = prepare_method(config, method, run_stage1(config, progress), adapter)
    if isinstance(setup.model, FlareModel):
        setup.model.source_cache = None  # each row is seen once
    if target_only:
        setup = without_english(setup)
    _write_predictions(config, setup, spec, rows, done, output, progress)
    return summary


def _write_predictions(
    config: ExperimentConfig,
    setup: MethodSetup,
    spec: TaskSpec,
    rows: UnlabeledFile,
    done: int,
    output: Path,
    progress: bool,
) -> None:
    """Predict the rows after the first ``done`` and append them to ``output``, in chunks.

    Each chunk is featurized when its turn comes, so memory does not grow with the file;
    one log line at the end counts the texts cut to ``data.max_length``.
    """
    truncations = setup.featurize.truncations
    truncations.clear()
    step = config.eval_batch_size * BATCHES_PER_WRITE
    description = f"predict {setup.method.name}"
    with tqdm(
        total=len(rows), initial=done, unit="row", desc=description, disable=not progress
    ) as bar:
        for start in range(done, len(rows), step):
            part = [setup.featurize(example) for example in rows.examples[start : start + step]]
            predictions = predict_features(setup, spec, part, config.eval_batch_size)
            ids = rows.ids[start : start + len(part)]
            append_lines(output, [{"id": i, **p} for i, p in zip(ids, predictions, strict=True)])
            bar.update(len(part))
    name = f"{config.task}/{config.languages[0]}/{rows.path.name}"
    logger.info("%s: %s", name, truncations.summary())


@torch.inference_mode()
def predict_features(
    setup: MethodSetup, spec: TaskSpec, features: Sequence[dict], batch_size: int
) -> list[dict]:
    """One prediction per feature, in order: ``label`` and ``probabilities``, or ``answer``."""
    if spec.kind == "qa":
        answers = setup.scorer.predict(setup.model, features, setup.collate, batch_size, False)
        return [{"answer": answer} for answer in answers]
    labels = spec.label_names

    def classify(batch: dict) -> list[dict]:
        logits = setup.scorer.logits(setup.model, batch).float()  # [B, C]
        probabilities = logits.softmax(-1).tolist()
        return [
            {"label": labels[best], "probabilities": dict(zip(labels, row, strict=True))}
            for best, row in zip(logits.argmax(-1).tolist(), probabilities, strict=True)
        ]

    return predict_in_order(
        setup.model, features, setup.collate, classify, batch_size, False, "predicting"
    )


def _one_cell(config: ExperimentConfig, method: str, language: str | None) -> ExperimentConfig:
    """``config`` with ``method`` and the one target language (checked as the config is)."""
    if language is None and len(config.languages) != 1:
        raise FlareError(
            f"the config lists {len(config.languages)} languages "
            f"({', '.join(config.languages)}): name the one to predict (--lang)"
        )
    languages = [language] if language is not None else config.languages
    return dataclasses.replace(config, methods=[method], languages=languages)


def _identity(
    config: ExperimentConfig,
    method: Method,
    spec: TaskSpec,
    rows: UnlabeledFile,
    adapter: Path | None,
    target_only: bool,
) -> dict:
    """What the predictions depend on: the output's record refuses a run with others."""
    return {
        "input_sha256": sha256_file(rows.path),
        "adapter_sha256": directory_digest(adapter) if adapter is not None else None,
        "method": method.name,
        "target_only": target_only,
        "language": config.languages[0],
        "task": config.task,
        "backbone": config.backbone,
        "latent_encoder": config.latent_encoder if method.source == "latent" else None,
        "stage1_dir": str(config.stage1_root.resolve()),
        "labels": list(spec.label_names),
        "prompt": dataclasses.asdict(prompt_template(config, spec)),
        "max_length": config.data.max_length,
    }
