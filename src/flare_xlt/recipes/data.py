"""Task data for the recipes: splits with size limits, and the English-only view for stage 1."""

from __future__ import annotations

import dataclasses
import random

from flare_xlt.errors import FlareError
from flare_xlt.recipes.config import ExperimentConfig
from flare_xlt.tasks import (
    ClassificationExample,
    LoadedSplit,
    PromptTemplate,
    TaskSpec,
    get_task_spec,
    get_template,
    load_parallel_file,
    load_task,
)

SUBSAMPLE_SEED = 0


def load_examples(config: ExperimentConfig, language: str, split: str) -> list:
    """A split of ``config.task`` in ``language``, cut to the configured size.

    Training and validation pairs always use the human English side; at test
    time the English side is ``config.data.english_side`` (``machine`` is the
    realistic setting, ``human`` an oracle).
    """
    english_side = config.data.english_side if split == "test" else "human"
    if config.data.files is not None:
        examples = list(_custom_split(config, language, split).examples)
    else:
        examples = load_task(
            config.task, language, split, data_dir=config.data.data_dir, english_side=english_side
        )
    limits = {
        "train": config.data.max_train_examples,
        "validation": config.data.max_validation_examples,
        "test": config.data.max_test_examples,
    }
    return subsample(examples, limits[split])


def check_languages(config: ExperimentConfig) -> None:
    """Read each language's test split once, so that a language the task or the data lack
    fails before any training rather than when its first cell starts."""
    for language in config.languages:
        load_examples(config, language, "test")


def subsample(examples: list, limit: int | None) -> list:
    """A fixed random subset of ``limit`` examples (same for every method and seed), in order."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(random.Random(SUBSAMPLE_SEED).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def english_only(examples: list) -> list:
    """The English side of each pair as its own example (stage-1 training data)."""
    return [_english(example) for example in examples]


def _english(example):
    if isinstance(example, ClassificationExample):
        if example.source is None:
            raise FlareError(f"example {example.id!r} has no English side for stage 1")
        return dataclasses.replace(example, language="eng", target=example.source)
    if not example.has_source or not example.source_answers:
        raise FlareError(
            f"QA example {example.id!r} has no English side for stage 1 "
            "(TyDiQA has none: train stage 1 on XQuAD pairs or translated data)"
        )
    return dataclasses.replace(
        example,
        language="eng",
        context=example.source_context,
        question=example.source_question,
        answers=example.source_answers,
        answer_starts=tuple(example.source_context.find(a) for a in example.source_answers),
    )


def task_spec(config: ExperimentConfig) -> TaskSpec:
    """The built-in task, or the spec of the user's files (read from the first train file)."""
    if config.data.files is None:
        return get_task_spec(config.task)
    return _custom_split(config, config.languages[0], "train").spec


def prompt_template(config: ExperimentConfig, spec: TaskSpec) -> PromptTemplate:
    """The task's prompt in ``data.prompt_language`` (user files: the generic English one)."""
    if config.data.files is None:
        return get_template(config.task, config.data.prompt_language)
    return spec.prompt


def _custom_split(config: ExperimentConfig, language: str, split: str) -> LoadedSplit:
    path = config.data.files.format(language=language, split=split)
    loaded = load_parallel_file(
        path,
        "classification",
        config.data.label_names,
        language,
        task_name=config.task,
        metric=config.data.metric,
    )
    loaded.log_report()
    return loaded
