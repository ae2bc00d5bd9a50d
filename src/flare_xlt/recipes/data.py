"""Task data for the recipes: splits with size limits, and the English-only view for stage 1."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.recipes.config import ExperimentConfig
from flare_xlt.recipes.machine_english import with_machine_english
from flare_xlt.recipes.methods import get_method
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
from flare_xlt.tasks.load import resolve_data_dir
from flare_xlt.tasks.splits import FILE_NAMES, SPLITS

SUBSAMPLE_SEED = 0


def load_examples(config: ExperimentConfig, language: str, split: str) -> list:
    """A split of ``config.task`` in ``language``, cut to the configured size.

    Training and validation pairs always use the human English side; at test
    time the English side is ``config.data.english_side`` (``machine`` is the
    realistic setting, ``human`` an oracle): with ``data.machine_english`` the
    test English comes from that translated file.
    """
    english_side = loaded_english_side(config, split)
    if config.data.files is not None:
        examples = list(_custom_split(config, language, split).examples)
    else:
        examples = load_task(
            config.task, language, split, data_dir=config.data.data_dir, english_side=english_side
        )
    if split == "test" and config.data.machine_english is not None:
        spec = task_spec(config)
        examples = with_machine_english(examples, config.data.machine_english, spec, language)
    limits = {
        "train": config.data.max_train_examples,
        "validation": config.data.max_validation_examples,
        "test": config.data.max_test_examples,
    }
    return subsample(examples, limits[split])


def loaded_english_side(config: ExperimentConfig, split: str) -> str:
    """The English side the task loader reads for ``split``.

    ``human`` except for a test split with ``english_side: machine`` and no
    ``machine_english`` file (the task's own machine translations, e.g. XNLI sw/ur).
    Without English (``none``) the human side is loaded and left unread.
    """
    machine = config.data.english_side == "machine" and config.data.machine_english is None
    return "machine" if split == "test" and machine else "human"


def check_languages(config: ExperimentConfig) -> None:
    """Read each language's test split once (and its train and validation splits when a
    method trains), so that a language the task or the data lack fails before any training
    rather than when its first cell starts (e.g. LoRA on a TyDiQA language without a train
    file)."""
    trains = any(get_method(name).trains for name in config.methods)
    splits = SPLITS if trains else ("test",)
    for language in config.languages:
        for split in splits:
            load_examples(config, language, split)


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
        raise FlareError(f"QA example {example.id!r} has no English side for stage 1")
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


def split_file(config: ExperimentConfig, language: str, split: str) -> Path:
    """The file of ``split`` in ``language`` under ``data.files``.

    The validation file is the ``validation`` one if it exists, else the ``dev`` one
    (:data:`~flare_xlt.tasks.splits.FILE_NAMES`); both at once are refused as ambiguous.
    """
    candidates = [
        Path(config.data.files.format(language=language, split=name)) for name in FILE_NAMES[split]
    ]
    found = [path for path in candidates if path.is_file()]
    if len(found) > 1:
        raise FlareError(
            f"both {found[0]} and {found[1]} exist: keep one {split} file for {language}"
        )
    if not found:
        tried = " or ".join(str(path) for path in candidates)
        raise FlareError(f"no {split} file for {language}: {tried} not found (data.files)")
    return found[0]


def data_provenance(config: ExperimentConfig) -> dict:
    """Where the grid's data come from, for the results' provenance.

    Own files: the path of every file the grid reads, by language and split (test for
    every language; train and validation for the first, which stage 1 reads, and for
    all when a method trains). Built-in tasks: the data directory that was used, or the
    Hugging Face Hub when none was found.
    """
    if config.data.files is None:
        directory = resolve_data_dir(config.data.data_dir)
        return {"data_dir": str(directory.resolve()) if directory else "Hugging Face Hub"}
    trains = any(get_method(name).trains for name in config.methods)
    files = {}
    for language in config.languages:
        splits = SPLITS if trains or language == config.languages[0] else ("test",)
        files[language] = {
            split: str(split_file(config, language, split).resolve()) for split in splits
        }
    return {"files": files}


def _custom_split(config: ExperimentConfig, language: str, split: str) -> LoadedSplit:
    """The split read from its file; the log names the split and the file it came from."""
    loaded = load_parallel_file(
        split_file(config, language, split),
        "classification",
        config.data.label_names,
        language,
        task_name=config.task,
        metric=config.data.metric,
    )
    loaded = dataclasses.replace(loaded, split=split)  # not the file's stem
    loaded.log_report()
    return loaded
