"""Experiment configuration: dataclasses loaded from YAML, with dotted CLI overrides.

Every key is validated up front; a typo names the bad key and the valid ones,
e.g. ``stage2.learnig_rate: unknown key; valid keys: batch_size, ...``.
"""

from __future__ import annotations

import copy
import dataclasses
import string
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flare_xlt.alignment import DEFAULT_ANSWER_PARTNER, default_alignment
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.evaluate.report import ENGLISH_SIDES
from flare_xlt.languages import language_code, resolve_language
from flare_xlt.models.quantization import QuantizationArgs
from flare_xlt.recipes.methods import METHODS, get_method
from flare_xlt.tasks import TaskSpec, get_task_spec
from flare_xlt.training.args import TrainArgs

# FlareConfig fields the YAML config does not set: each method picks its source, each
# stage the modules it trains in full.
_NOT_ADAPTER_ARGS = ("source", "modules_to_save")


def _with_flare_fields(cls: type) -> type:
    """Make ``cls`` a dataclass with the fields (types, defaults, order) of FlareConfig
    less :data:`_NOT_ADAPTER_ARGS`, so a new FlareConfig setting is a YAML key too."""
    hints = typing.get_type_hints(FlareConfig)
    cls.__annotations__ = {}
    for spec in dataclasses.fields(FlareConfig):
        if spec.name in _NOT_ADAPTER_ARGS:
            continue
        cls.__annotations__[spec.name] = hints[spec.name]
        if spec.default is dataclasses.MISSING:
            setattr(cls, spec.name, field(default_factory=spec.default_factory))
        else:
            setattr(cls, spec.name, spec.default)
    return dataclass(cls)


@_with_flare_fields
class AdapterArgs:
    """The stage-2 adapter (LoRA for the baselines, FLARE for the fusion methods).

    Its fields are :class:`~flare_xlt.config.FlareConfig`'s (same defaults and
    validation), less ``source`` and ``modules_to_save``.
    """

    def resolved(self, source: str | None, causal: bool) -> AdapterArgs:
        """These settings with ``alignment``/``answer_partner`` left unset filled in as
        :meth:`FlareModel.from_base` fills them for a ``source`` adapter on a causal LM
        (``causal``) or an encoder; plain LoRA (``source=None``) keeps them as given."""
        if source is None:
            return self
        return dataclasses.replace(
            self,
            alignment=self.alignment or default_alignment(source, causal),
            answer_partner=self.answer_partner or DEFAULT_ANSWER_PARTNER,
        )

    def flare_config(self, source: str | None, modules_to_save=None) -> FlareConfig:
        return FlareConfig(
            **dataclasses.asdict(self), source=source, modules_to_save=modules_to_save
        )


@dataclass
class DataArgs:
    """Which data, how much of it, and which English the model sees at test time.

    ``files`` points at your own parallel data instead of a built-in task: a path
    with ``{language}`` and ``{split}`` placeholders (e.g. ``data/{language}.{split}.jsonl``)
    to CSV/JSONL files with ``source_text``, ``target_text``, ``label`` columns; then
    ``label_names`` lists the classes and ``metric`` (default ``accuracy``) scores them.
    ``{language}`` is filled in with each entry of ``languages`` as written there, which
    may be a language outside the registry (an ISO 639-3 code such as ``quy``, an ISO 639-1
    code such as ``gn``, or a ``code_Script`` tag such as ``quy_Latn``). ``{split}`` is
    filled in with ``train``, ``validation`` and ``test``; the validation file may instead
    be named ``dev`` (``validation`` is read when it exists, else ``dev``; a folder with
    both is refused as ambiguous). See :mod:`flare_xlt.tasks.splits`.

    ``english_side`` is the English every method reads at test time (training always reads
    the human English): ``human`` (an oracle), ``machine`` (the realistic setting: the
    built-in machine translations of XNLI sw/ur, or ``machine_english``) or ``none`` (FLARE
    adapters run on the target text alone; methods that cannot drop the English are
    refused). ``machine_english`` is a path with ``{language}`` to the output of ``flare
    translate --split test`` for each language: its ``source_text`` (and
    ``source_text_pair``) replace the test English, matched by id.
    """

    data_dir: str | None = None
    files: str | None = None
    label_names: list[str] | None = None
    metric: str | None = None
    english_side: str = "human"
    machine_english: str | None = None
    prompt_language: str = "en"
    max_length: int = 128
    max_train_examples: int | None = None
    max_validation_examples: int | None = None
    max_test_examples: int | None = None

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise FlareError(f"max_length={self.max_length}: use at least 8 tokens")
        for split in ("train", "validation", "test"):
            limit = getattr(self, f"max_{split}_examples")
            if limit is not None and limit < 1:
                raise FlareError(f"max_{split}_examples={limit}: use at least 1, or null for all")
        if self.files is not None:
            placeholders = {name for _, name, _, _ in string.Formatter().parse(self.files) if name}
            if not placeholders <= {"language", "split"}:
                unknown = ", ".join(sorted(placeholders - {"language", "split"}))
                raise FlareError(
                    f"files={self.files!r}: unknown placeholder {unknown}; "
                    "only {language} and {split} are filled in"
                )


@dataclass
class ExperimentConfig:
    """A grid of methods x languages x seeds on one task and backbone.

    Attributes:
        stage1_dir: where the English task model lives (default ``<output_dir>/stage1``);
            experiments on the same backbone and task can share it.
        report_dir: where ``results.json``, ``results.md``, ``results.png`` and
            ``config.json`` go (default ``output_dir``). Grids that share ``output_dir``
            (its finished cells and stage-1 model) keep separate tables this way.
        joint_languages: train one adapter per method on all languages' pairs
            together (multi-target FLARE) and evaluate it on each language.
        source_cache: reuse source/latent states after the first epoch.
        quantization: load the backbone in 4 bits (QLoRA), e.g.
            ``quantization: {load_in_4bit: true}``; None = full precision.
    """

    name: str = "experiment"
    task: str = "nusax_senti"
    languages: list[str] = field(default_factory=lambda: ["javanese"])
    methods: list[str] = field(default_factory=lambda: ["lora", "flare"])
    seeds: list[int] = field(default_factory=lambda: [42])
    backbone: str = "gemma-3-270m"
    latent_encoder: str = "multilingual-e5-small"
    output_dir: str | None = None
    stage1_dir: str | None = None
    report_dir: str | None = None
    joint_languages: bool = False
    source_cache: bool = True
    eval_batch_size: int = 16
    data: DataArgs = field(default_factory=DataArgs)
    adapter: AdapterArgs = field(default_factory=AdapterArgs)
    stage1: TrainArgs = field(default_factory=TrainArgs)
    stage2: TrainArgs = field(default_factory=TrainArgs)
    quantization: QuantizationArgs | None = None

    def __post_init__(self) -> None:
        if self.data.files is None:
            get_task_spec(self.task)
        elif "{split}" not in self.data.files or not self.data.label_names:
            raise FlareError(
                "data.files needs a {split} placeholder (and {language} for several "
                "languages), and data.label_names must list the classes"
            )
        if len(self.languages) > 1 and self.data.files and "{language}" not in self.data.files:
            raise FlareError(
                f"data.files={self.data.files!r} needs a {{language}} placeholder: "
                f"{len(self.languages)} languages would all read the same file"
            )
        _refuse_duplicates("languages", [self._language_id(x) for x in self.languages])
        _refuse_duplicates("methods", self.methods)
        _refuse_duplicates("seeds", self.seeds)
        if self.eval_batch_size < 1:
            raise FlareError(f"eval_batch_size={self.eval_batch_size}: use at least 1")
        if self.data.files is None:
            _refuse_methods_needing_english(get_task_spec(self.task), self.methods)
        qa = self.data.files is None and get_task_spec(self.task).kind == "qa"
        for method in self.methods:
            if get_method(method).mixup and qa:
                raise FlareError(f"x_mixup supports classification tasks only, not {self.task!r}")
        if not self.languages or not self.methods or not self.seeds:
            raise FlareError("languages, methods and seeds must each list at least one entry")
        _check_english_side(self.data, self.methods)
        self.adapter.flare_config("model")  # validates the adapter settings

    def _language_id(self, language: str) -> str:
        """The code ``language`` stands for, which identifies it among ``languages``.

        With your own files (``data.files``) any well-formed language code is accepted;
        a built-in task needs a registry language.
        """
        if self.data.files is not None:
            return language_code(language)
        try:
            return resolve_language(language).iso639_3
        except FlareError as err:
            raise FlareError(
                f"{err}; built-in tasks cover registry languages only (a language outside "
                "the registry works with your own files: data.files)"
            ) from None

    @property
    def root(self) -> Path:
        return Path(self.output_dir or Path("runs") / self.name)

    @property
    def stage1_root(self) -> Path:
        return Path(self.stage1_dir) if self.stage1_dir else self.root / "stage1"

    @property
    def report_root(self) -> Path:
        return Path(self.report_dir) if self.report_dir else self.root

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _refuse_methods_needing_english(spec: TaskSpec, methods: list[str]) -> None:
    """One line naming the alternative when ``methods`` need an English side ``spec`` lacks."""
    needing = [name for name in methods if get_method(name).uses_english]
    if needing and not spec.has_english_side:
        working = ", ".join(name for name in METHODS if not METHODS[name].uses_english)
        raise FlareError(
            f"{spec.without_english}; drop {', '.join(needing)} (methods that work "
            f"on {spec.name}: {working})"
        )


def _check_english_side(data: DataArgs, methods: list[str]) -> None:
    """One line naming the fix for an unknown ``english_side`` or one the methods cannot read."""
    if data.english_side not in ENGLISH_SIDES:
        raise FlareError(
            f"data.english_side={data.english_side!r}: choose one of {', '.join(ENGLISH_SIDES)}"
        )
    if data.machine_english is not None and data.english_side != "machine":
        raise FlareError(
            f"data.machine_english is read only with data.english_side=machine "
            f"(it is {data.english_side!r}): set both, or drop machine_english"
        )
    if data.machine_english is not None and "{language}" not in data.machine_english:
        raise FlareError(
            f"data.machine_english={data.machine_english!r} needs a {{language}} placeholder"
        )
    if data.english_side == "none":
        reading = [get_method(m) for m in methods if get_method(m).uses_english]
        needing = [m.name for m in reading if not m.can_drop_english]
        if needing:
            raise FlareError(
                f"data.english_side=none: {', '.join(needing)} read the English at test time "
                "and cannot drop it (only flare can); remove them from methods"
            )


def _refuse_duplicates(axis: str, entries: list) -> None:
    repeated = sorted({str(x) for x in entries if entries.count(x) > 1})
    if repeated:
        raise FlareError(f"{axis} lists {', '.join(repeated)} more than once")


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict | None = None,
    values: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Read a YAML config (else ``base``, else the defaults), then apply ``key.sub=value``.

    An override's value is read as YAML (``[a, b]``, ``1e-4``, ``null``); ``values``
    maps dotted keys to values taken as they are, for paths such as ``data.data_dir``
    (a folder named ``null`` or ``runs #2`` is a path, not YAML).
    """
    data: dict = copy.deepcopy(base) if base is not None else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FlareError(f"config file {path} not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise FlareError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise FlareError(f"{path} must hold a mapping of settings at the top level")
    for override in overrides or []:
        key, sep, value = override.partition("=")
        if not sep:
            raise FlareError(f"override {override!r} must look like key.sub=value")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            reason = str(err).splitlines()[0]
            raise FlareError(
                f"override {override!r}: the value is not valid YAML ({reason})"
            ) from None
        _set_dotted(data, key.strip(), parsed)
    for key, value in (values or {}).items():
        _set_dotted(data, key, value)
    return from_dict(ExperimentConfig, data)


def from_dict(cls: type, data: Any, prefix: str = ""):
    """Build dataclass ``cls`` from nested dicts, naming any bad key by its dotted path."""
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "config"
        raise FlareError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in known:
            raise FlareError(f"{path}: unknown key; valid keys: {', '.join(sorted(known))}")
        kwargs[key] = _convert(hints[key], value, path)
    try:
        return cls(**kwargs)
    except FlareError as err:
        if not prefix:
            raise
        raise FlareError(f"{prefix.rstrip('.')}: {err}") from None
    except TypeError as err:
        raise FlareError(f"{prefix.rstrip('.') or 'config'}: {err}") from None


def _convert(hint, value, path: str):
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, f"{path}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        if dataclasses.is_dataclass(hint):  # an optional section, e.g. quantization
            return from_dict(hint, value, f"{path}.")
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        items = value if isinstance(value, list) else [value]
        return [_convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(items)]
    if hint is float and isinstance(value, str):
        try:  # YAML reads "2e-4" (no dot) as a string
            return float(value)
        except ValueError:
            raise FlareError(f"{path}: expected a number, got {value!r}") from None
    if hint is float and _is_number(value):
        return float(value)
    if hint is str and _is_number(value):
        return str(value)
    valid = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        str: isinstance(value, str),
    }
    if not valid.get(hint, True):
        raise FlareError(f"{path}: expected {hint.__name__}, got {value!r}")
    return value


def _set_dotted(data: dict, key: str, value) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if node.get(part) is None:  # an optional section left unset (quantization: null)
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise FlareError(f"override {key}: {part} is not a section")
    node[parts[-1]] = value


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
