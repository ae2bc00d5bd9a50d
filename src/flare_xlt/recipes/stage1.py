"""Stage 1: the English task model, trained once per (backbone, task) and reused by every method.

A LoRA adapter (plus, for encoders, the classification head) is trained on the
English task data (the English side of the pairs, or a task's own English split:
:func:`english_data`), merged into the base weights and saved as an
ordinary Hugging Face model directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

from transformers import set_seed

from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object
from flare_xlt.model import FlareModel
from flare_xlt.recipes.backbone import head_kind, head_modules, load_task_model
from flare_xlt.recipes.components import build_components
from flare_xlt.recipes.config import ExperimentConfig
from flare_xlt.recipes.data import english_only, load_examples, prompt_template, task_spec
from flare_xlt.recipes.methods import METHODS
from flare_xlt.recipes.truncation import featurize_split
from flare_xlt.records import check_record, write_record
from flare_xlt.training.distributed import is_main_process, wait_for_everyone
from flare_xlt.training.fit import FitSetup, fit

logger = logging.getLogger("flare_xlt")

MARKER = "stage1.json"


def run_stage1(config: ExperimentConfig, progress: bool = True) -> Path:
    """Train (or reuse) the English task model; returns its directory."""
    directory = config.stage1_root
    model_dir = directory / "model"
    english_train, english_validation = english_data(config)
    settings = stage1_settings(config, english_train, english_validation)
    if (directory / MARKER).is_file():
        check_record(
            read_json_object(directory / MARKER),
            settings,
            directory / MARKER,
            "set stage1_dir (or output_dir) to another folder",
            kind="stage1",
            problem="holds an English task model trained with other settings",
            old_fix=f"delete {directory} to train it again, or set stage1_dir to another folder",
        )
        if not model_dir.is_dir():
            raise FlareError(
                f"{directory / MARKER} records an English task model but {model_dir} is missing; "
                f"restore it, or delete {directory / MARKER} to train it again"
            )
        logger.info("stage 1: reusing the English task model in %s", model_dir)
        return model_dir
    spec = task_spec(config)
    head = head_kind(config.backbone)
    set_seed(config.stage1.seed)  # the new head's and the adapter's initial weights
    model, tokenizer = load_task_model(config.backbone, head, spec, config.quantization)
    template = prompt_template(config, spec)
    parts = build_components(
        spec, tokenizer, template, head, METHODS["lora"], config.data.max_length
    )
    featurize, collate, scorer = parts.featurize, parts.collate, parts.scorer
    train = featurize_split(featurize, english_train, f"stage 1 {config.task}/eng/train")
    validation = featurize_split(
        featurize, english_validation, f"stage 1 {config.task}/eng/validation"
    )

    adapter = FlareConfig(
        r=config.adapter.r,
        alpha=config.adapter.alpha,
        target_modules=config.adapter.target_modules,
        source=None,
        modules_to_save=head_modules(model) if head == "classifier" else None,
    )
    lora = FlareModel.from_base(model, adapter)
    logger.info("stage 1: English LoRA on %d examples; %s", len(train), lora.trainable_parameters())
    result = fit(
        FitSetup(
            model=lora,
            train=train,
            validation=validation,
            scorer=scorer,
            collate=collate,
            metric=spec.metric,
            args=config.stage1,
            output_dir=directory / "train",
            eval_batch_size=config.eval_batch_size,
            progress=progress,
            run_settings={k: v for k, v in settings.items() if k != "stage1"},
        )
    )
    english_score = result.best_metric  # the best weights are restored: no second scoring
    score_name = scorer.metric_key or spec.metric  # the number best_metric is (QA: exact match)
    if is_main_process():
        _save_merged(lora, tokenizer, directory)
        write_record(
            directory / MARKER,
            "stage1",
            settings,
            english_validation={score_name: english_score},
            train_steps=result.global_step,
            best_step=result.best_step,
            train_seconds=result.train_seconds,
        )
    wait_for_everyone()
    logger.info("stage 1: English validation %s = %s", score_name, english_score)
    return model_dir


def _save_merged(lora: FlareModel, tokenizer, directory: Path) -> None:
    """Merge the English LoRA and save model + tokenizer atomically as ``directory/model``."""
    merged = lora.merge_and_unload()
    staging = directory / "model.partial"
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(directory / "model", ignore_errors=True)
    staging.rename(directory / "model")


def english_data(config: ExperimentConfig) -> tuple[list, list]:
    """The English training and validation examples of stage 1.

    Parallel tasks (NusaX, XNLI, XQuAD) give every language the same English side, so the
    English side of the first language's pairs serves them all. A task whose examples have
    no English side names the language stage 1 reads instead (``TaskSpec.stage1_language``:
    TyDiQA trains on its English train file). Either way :func:`stage1_settings` records a
    fingerprint of these texts, not the language or file they were read from.
    """
    splits = ("train", "validation")
    english = task_spec(config).stage1_language
    if english is not None:
        return tuple(load_examples(config, english, split) for split in splits)
    language = config.languages[0]
    return tuple(english_only(load_examples(config, language, split)) for split in splits)


def fingerprint(examples: list) -> str:
    """SHA-256 of the examples' contents (ids, texts, labels), independent of file paths."""
    payload = json.dumps([dataclasses.asdict(e) for e in examples], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def stage1_settings(config: ExperimentConfig, english_train: list, english_validation: list):
    """What the English task model depends on (a dict), given the English examples it reads."""
    data = config.data
    adapter = config.adapter
    quantization = config.quantization
    return {
        "backbone": config.backbone,
        "task": config.task,
        "prompt_language": data.prompt_language,
        "max_length": data.max_length,
        "english_data": {
            "train": fingerprint(english_train),
            "validation": fingerprint(english_validation),
        },
        "adapter": {
            "r": adapter.r,
            "alpha": adapter.alpha,
            "target_modules": adapter.target_modules,
        },
        "stage1": dataclasses.asdict(config.stage1),
        "quantization": None if quantization is None else dataclasses.asdict(quantization),
    }
