"""Stage 2: one method, one or several target languages, one seed — trained and evaluated.

This is the single code path all methods share; :mod:`flare_xlt.recipes.methods`
says what differs between them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from torch import nn
from transformers import set_seed

from flare_xlt.baselines.xmixup import CONFIG_FILE as XMIXUP_CONFIG_FILE
from flare_xlt.baselines.xmixup import XMixupModel
from flare_xlt.cache import SourceCache
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.evaluate import RunResult
from flare_xlt.fileio import read_json_object
from flare_xlt.latent import LatentEncoder
from flare_xlt.model import FlareModel
from flare_xlt.models import load_backbone
from flare_xlt.recipes.backbone import head_kind, load_task_model
from flare_xlt.recipes.components import build_components
from flare_xlt.recipes.config import AdapterArgs, ExperimentConfig
from flare_xlt.recipes.data import load_examples, prompt_template, task_spec
from flare_xlt.recipes.data_fingerprint import cell_data_record, changed_files
from flare_xlt.recipes.methods import METHODS, Method, get_method
from flare_xlt.recipes.target_only import without_english
from flare_xlt.recipes.truncation import featurize_split
from flare_xlt.records import check_record, write_record
from flare_xlt.training.distributed import is_main_process, wait_for_everyone
from flare_xlt.training.fit import FitSetup, fit, score

logger = logging.getLogger("flare_xlt")

RESULT_FILE = "cell.json"


@dataclass(frozen=True)
class Cell:
    """One grid cell: a method trained on ``train_languages`` and tested on each of them."""

    method: str
    train_languages: tuple[str, ...]
    seed: int

    @property
    def name(self) -> str:
        languages = "+".join(self.train_languages)
        return f"{self.method}/{languages}/seed{self.seed}"


def cell_dir(config: ExperimentConfig, cell: Cell) -> Path:
    return config.root / "cells" / cell.name


def result_path(config: ExperimentConfig, cell: Cell) -> Path:
    """Where the cell's results with the configured test-time English are kept.

    One training serves every ``data.english_side``: the first side evaluated writes
    ``cell.json``, each further one ``cell.<side>.json`` beside it (e.g. a FLARE adapter
    tested with the human English, then with machine English, then with none).
    """
    first = cell_dir(config, cell) / RESULT_FILE
    side = config.data.english_side
    if first.is_file() and _recorded_side(read_json_object(first)) != side:
        return first.with_name(f"cell.{side}.json")
    return first


def _recorded_side(payload: dict) -> str:
    """The test-time English a cell record was evaluated with."""
    return ((payload.get("settings") or {}).get("data") or {}).get("english_side", "human")


def load_cell_results(config: ExperimentConfig, cell: Cell) -> list[RunResult] | None:
    """Results of a finished cell, or None if it has not finished.

    A cell finished under different settings, or from data files whose content has changed
    since, is refused rather than silently reused. Where the data lie is not a setting once
    their content is recorded: a moved data directory with the same files stays valid.
    """
    path = result_path(config, cell)
    if not path.is_file():
        return None
    payload = read_json_object(path)
    # where the data lie is compared only while their content is not recorded
    located = not isinstance(payload.get("data"), dict)
    check_record(
        payload,
        cell_settings(config, cell.method),
        path,
        "use another output_dir (or delete that cell to recompute it)",
        kind="cell",
        problem="was produced with different settings",
        relevant=lambda settings: _relevant(settings, cell.method, located),
        old_fix=f"delete {path.parent} to compute it again, or use another output_dir",
    )
    _refuse_changed_data(path, payload.get("data"), config, cell)
    return [RunResult.from_dict(r) for r in payload["results"]]


def _refuse_changed_data(path: Path, saved: dict | None, config, cell: Cell) -> None:
    """FlareError when a file the finished cell read has changed since (a cell computed
    before data fingerprints existed, upgraded by ``flare upgrade-records``, has
    ``"data": null``: where its data lie is compared instead)."""
    if not isinstance(saved, dict):
        return
    current = cell_data_record(config, cell.train_languages, get_method(cell.method).trains)
    changed = changed_files(saved, current)
    if changed:
        raise FlareError(
            f"{path} was computed from other data: {', '.join(changed)} changed since; "
            "delete that cell to recompute it (or use another output_dir)"
        )


# Where the data are read from (their content is compared instead, when recorded).
DATA_LOCATION = ("data_dir", "files", "machine_english")
# What only the evaluation reads: one training serves every test-time English.
TEST_ONLY = ("english_side", "machine_english")
# Adapter settings that only a fusion adapter (FLARE, FLARE-MT) reads.
FUSION_ONLY = (
    "fusion",
    "fusion_modules",
    "source_layer_offset",
    "source_representation",
    "alignment",
    "answer_partner",
    "source_dropout",
)


def _relevant(settings: dict, method: str, located: bool = True) -> dict:
    """``settings`` less those known not to change ``method``'s result.

    ``located=False``: the data's content is recorded, so where they lie is left out too.
    """
    ignored = {"source_cache"}  # the cache gives the same losses (tested)
    if get_method(method).source != "latent":
        ignored.add("latent_encoder")
    relevant = {key: value for key, value in settings.items() if key not in ignored}
    if get_method(method).source is None and isinstance(relevant.get("adapter"), dict):
        adapter = relevant["adapter"]
        relevant["adapter"] = {k: v for k, v in adapter.items() if k not in FUSION_ONLY}
    if not located and isinstance(relevant.get("data"), dict):
        data = relevant["data"]
        relevant["data"] = {k: v for k, v in data.items() if k not in DATA_LOCATION}
    return relevant


def cell_settings(config: ExperimentConfig, method: str) -> dict:
    """The settings a cell of ``method`` depends on (the grid axes are in the cell's path).

    The adapter's alignment is recorded as resolved for the backbone, so a later change of
    the default makes the cells trained under the old one stale instead of silently reused.
    ``answer_partner`` is left out for classification, where no token follows the prompt.
    """
    settings = config.to_dict()
    settings["adapter"] = dataclasses.asdict(adapter_settings(config, get_method(method)))
    if not _generates(config):
        del settings["adapter"]["answer_partner"]
    not_results = ("output_dir", "report_dir", "eval_batch_size")
    for axis in ("name", "languages", "methods", "seeds", *not_results):
        settings.pop(axis)
    return json.loads(json.dumps(settings))


def _run_settings(config: ExperimentConfig, method: str) -> dict:
    """What a cell's training depends on besides its TrainArgs (which training checks)."""
    settings = _relevant(cell_settings(config, method), method)
    settings["data"] = {k: v for k, v in settings["data"].items() if k not in TEST_ONLY}
    return {k: v for k, v in settings.items() if k != "stage2"}


def adapter_settings(config: ExperimentConfig, method: Method) -> AdapterArgs:
    """``config.adapter`` with the backbone's default alignment filled in for ``method``."""
    return config.adapter.resolved(method.source, head_kind(config.backbone) == "causal_lm")


def _generates(config: ExperimentConfig) -> bool:
    """Whether the task's answers are generated after the prompt (QA on a causal LM)."""
    qa = config.data.files is None and task_spec(config).kind == "qa"
    return qa and head_kind(config.backbone) == "causal_lm"


@dataclass
class MethodSetup:
    """What one method needs on one stage-1 model: the model, featurizer, scorer and collator."""

    method: Method
    model: nn.Module
    featurize: Any
    scorer: Any
    collate: Any
    metric: str

    def features(self, config: ExperimentConfig, language: str, split: str) -> list[dict]:
        """Featurized examples; cache keys name the split so train and test never collide.

        How many texts were cut to ``max_length`` is logged once per split.
        """
        examples = load_examples(config, language, split)
        features = featurize_split(self.featurize, examples, f"{config.task}/{language}/{split}")
        return [
            dict(feature, cache_key=f"{split}/{language}/{e.id}")
            for feature, e in zip(features, examples, strict=True)
        ]


def prepare_method(
    config: ExperimentConfig,
    method_name: str,
    stage1_dir: Path,
    adapter_dir: Path | None = None,
    seed: int | None = None,
) -> MethodSetup:
    """Load the stage-1 model and wrap it for ``method_name``: a fresh adapter, or a saved one.

    ``seed`` (default ``config.stage2.seed``) sets a fresh adapter's initial weights, so a
    cell's result does not depend on what ran before it in the same process.
    """
    method = get_method(method_name)
    set_seed(config.stage2.seed if seed is None else seed)
    spec = task_spec(config)
    head = head_kind(config.backbone)
    model, tokenizer = load_task_model(str(stage1_dir), head, spec)
    template = prompt_template(config, spec)
    latent, latent_tokenizer = None, None
    if method.source == "latent":
        encoder, latent_tokenizer = load_backbone(config.latent_encoder, task="encoder")
        latent = LatentEncoder(encoder, model.config.hidden_size, config.latent_encoder)
    if method.trains and adapter_dir is not None:
        check_adapter_method(adapter_dir, method)
    if method.mixup and adapter_dir is None:
        model = XMixupModel.from_base(model, config.adapter.flare_config(None))
    elif method.mixup:
        model = XMixupModel.from_pretrained(model, adapter_dir)
    elif method.trains and adapter_dir is None:
        adapter = adapter_settings(config, method).flare_config(method.source)
        model = FlareModel.from_base(model, adapter, latent)
    elif method.trains:
        model = FlareModel.from_pretrained(model, adapter_dir, latent)
    if isinstance(model, FlareModel) and config.source_cache and method.source is not None:
        model.source_cache = SourceCache()
    parts = build_components(
        spec, tokenizer, template, head, method, config.data.max_length, latent_tokenizer
    )
    return MethodSetup(method, model, parts.featurize, parts.scorer, parts.collate, spec.metric)


def check_adapter_method(adapter_dir: Path, method: Method) -> None:
    """Refuse an adapter trained for another method (e.g. a FLARE adapter with ``lora``)."""
    if Path(adapter_dir, XMIXUP_CONFIG_FILE).is_file():
        names = [m.name for m in METHODS.values() if m.mixup]
    else:
        source = FlareConfig.load_file(adapter_dir)[0].source
        names = [
            m.name for m in METHODS.values() if m.trains and not m.mixup and m.source == source
        ]
    if method.name not in names:
        raise FlareError(
            f"{adapter_dir} holds an adapter for {' or '.join(names)}, "
            f"not for method {method.name!r}"
        )


def run_cell(
    config: ExperimentConfig, cell: Cell, stage1_dir: Path, progress: bool = True
) -> list[RunResult]:
    """Train (if the method trains) and evaluate one cell; resumable, skipped when done."""
    if (done := load_cell_results(config, cell)) is not None:
        return done
    setup = prepare_method(config, cell.method, stage1_dir, seed=cell.seed)
    directory = cell_dir(config, cell)
    timings: dict[str, float] = {}
    if setup.method.trains:
        train = [f for lang in cell.train_languages for f in setup.features(config, lang, "train")]
        validation = [
            f for lang in cell.train_languages for f in setup.features(config, lang, "validation")
        ]
        logger.info(
            "%s: training on %d pairs; %s",
            cell.name,
            len(train),
            setup.model.trainable_parameters(),
        )
        result = fit(
            FitSetup(
                model=setup.model,
                train=train,
                validation=validation,
                scorer=setup.scorer,
                collate=setup.collate,
                metric=setup.metric,
                args=replace(config.stage2, seed=cell.seed),
                output_dir=directory / "train",
                eval_batch_size=config.eval_batch_size,
                progress=progress,
                run_settings=_run_settings(config, cell.method),
            )
        )
        if is_main_process():
            setup.model.save_pretrained(directory / "adapter")
        timings.update(train_seconds=result.train_seconds, train_steps=result.global_step)
    if config.data.english_side == "none" and setup.method.can_drop_english:
        setup = without_english(setup)
    joint = len(cell.train_languages) > 1
    results = [
        evaluate_language(config, setup, language, cell.seed, progress, timings, joint)
        for language in cell.train_languages
    ]
    if is_main_process():
        directory.mkdir(parents=True, exist_ok=True)
        write_record(
            result_path(config, cell),
            "cell",
            cell_settings(config, cell.method),
            cell=asdict(cell),
            data=cell_data_record(config, cell.train_languages, setup.method.trains),
            results=[asdict(r) for r in results],
        )
    wait_for_everyone()
    return results


def evaluate_language(
    config: ExperimentConfig,
    setup: MethodSetup,
    language: str,
    seed: int,
    progress: bool = True,
    extra: dict | None = None,
    joint: bool = False,
) -> RunResult:
    """Score ``setup`` on the test split of ``language``.

    A trained FLARE model's source cache is released first: training is over, and test
    examples are scored once, so caching their English states would only cost memory.
    """
    if isinstance(setup.model, FlareModel):
        setup.model.source_cache = None
    test = setup.features(config, language, "test")
    name = setup.method.name
    value, seconds, values = score(
        setup.model,
        test,
        setup.scorer,
        setup.collate,
        setup.metric,
        config.eval_batch_size,
        progress,
        f"test {name} {language}",
    )
    logger.info("%s %s seed %d: test %s", name, language, seed, values)
    return RunResult(
        method=f"{name} (joint)" if joint else name,
        language=language,
        seed=seed,
        metric=setup.scorer.metric_key or setup.metric,
        score=value,
        n_examples=len(test),
        english_side=config.data.english_side if setup.method.uses_english else "none",
        extra=dict(extra or {}, eval_seconds=seconds, scores=values),
    )
