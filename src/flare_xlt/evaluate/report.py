"""Results of an experiment grid: aggregate over seeds, tabulate, save (plots: ``plots.py``).

One :class:`RunResult` is one score of one method on one language with one
seed. :func:`aggregate` turns a list of them into a :class:`ResultsTable`
(mean and sample std over seeds, average over languages, average rank), which
:func:`to_markdown` and :func:`~flare_xlt.evaluate.plots.plot_results` present. Every one says
which English the model saw at test time, because a human translation (an
oracle) and a machine translation (the realistic setting) are not comparable.
:func:`write_results_json` keeps the raw runs together with the configuration,
package versions, data provenance and timings.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object, write_text_atomically

ENGLISH_SIDES: dict[str, str] = {
    "human": "human translation (oracle)",
    "machine": "machine translation (realistic setting)",
    "none": "no English input",
}
"""What English a method saw at test time, and how tables describe it."""

METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "exact_match": "Exact match",
    "f1": "F1",
}
"""Display names of the metrics that :mod:`flare_xlt.evaluate.metrics` produces."""

SCHEMA = "flare-xlt/results"
SCHEMA_VERSION = 1
VERSIONED_PACKAGES = (
    "flare-xlt",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "numpy",
    "scikit-learn",
)
"""Distributions whose installed versions every results.json records."""

_TIE_DECIMALS = 9  # scores equal to this many decimals tie (absorbs float noise of means)


@dataclass
class RunResult:
    """One score: ``method`` on ``language`` with ``seed``, in percent (0-100).

    ``english_side`` is the English the model saw at test time: ``"human"``
    (human translation, an oracle), ``"machine"`` (machine translation) or
    ``"none"`` (target text only). ``extra`` holds anything else worth keeping
    (timings, checkpoint paths); it must be JSON-serialisable.
    """

    method: str
    language: str
    seed: int
    metric: str
    score: float
    n_examples: int
    english_side: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.english_side not in ENGLISH_SIDES:
            raise FlareError(
                f"english_side must be one of {sorted(ENGLISH_SIDES)}, got {self.english_side!r}"
            )
        if not (math.isfinite(self.score) and 0.0 <= self.score <= 100.0):
            raise FlareError(
                f"score must be a percentage in [0, 100], got {self.score!r} "
                f"({self.method}, {self.language}, seed {self.seed})"
            )
        if self.n_examples < 1:
            raise FlareError(f"n_examples must be positive, got {self.n_examples}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Build from a dict as written by :func:`dataclasses.asdict`."""
        names = {f.name for f in fields(cls)}
        missing = names - {"extra"} - set(data)
        if missing:
            raise FlareError(f"run result is missing {sorted(missing)}: {data!r}")
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass(frozen=True)
class Cell:
    """The scores of one method on one language over seeds."""

    mean: float
    std: float | None
    """Sample standard deviation (ddof=1); None with a single seed."""
    seeds: tuple[int, ...]
    english_side: str


@dataclass(frozen=True)
class ResultsTable:
    """Per-(method, language) results of one metric, with averages and ranks.

    ``averages[m]`` is the mean over all languages of method ``m``'s cell
    means, or None when ``m`` lacks a language. ``avg_ranks[m]`` is the mean
    rank of ``m`` (1 = best, ties share the average rank) over the languages
    that every method has, or None when there is no such language.
    """

    metric: str
    methods: tuple[str, ...]
    languages: tuple[str, ...]
    cells: dict[tuple[str, str], Cell]
    averages: dict[str, float | None]
    avg_ranks: dict[str, float | None]

    def english_sides(self, method: str) -> tuple[str, ...]:
        """The English sides ``method`` saw, sorted."""
        return tuple(
            sorted(
                {cell.english_side for (m, _), cell in self.cells.items() if m == method},
            )
        )

    @property
    def multi_seed(self) -> bool:
        """Whether any cell aggregates several seeds."""
        return any(len(cell.seeds) > 1 for cell in self.cells.values())


def average_ranks(scores: Sequence[float]) -> list[float]:
    """Ranks of ``scores``, 1 for the highest; tied scores share their average rank."""
    keys = [round(score, _TIE_DECIMALS) for score in scores]
    order = sorted(range(len(keys)), key=lambda index: -keys[index])
    ranks = [0.0] * len(keys)
    start = 0
    while start < len(order):
        stop = start
        while stop + 1 < len(order) and keys[order[stop + 1]] == keys[order[start]]:
            stop += 1
        for position in range(start, stop + 1):
            ranks[order[position]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def _ordered(values: Iterable[str], wanted: Sequence[str] | None, what: str) -> tuple[str, ...]:
    """``wanted`` if given (each must occur in ``values``), else ``values`` in first-seen order."""
    seen = tuple(dict.fromkeys(values))
    if wanted is None:
        return seen
    absent = [value for value in wanted if value not in seen]
    if absent:
        raise FlareError(f"no results for {what} {absent}; have {list(seen)}")
    return tuple(wanted)


def _select_metric(results: Sequence[RunResult], metric: str | None) -> list[RunResult]:
    """The results of ``metric``; with None, there must be only one metric."""
    metrics = sorted({result.metric for result in results})
    if metric is None:
        if len(metrics) > 1:
            raise FlareError(f"results mix metrics {metrics}; pass metric= to choose one")
        return list(results)
    if metric not in metrics:
        raise FlareError(f"no results for metric {metric!r}; have {metrics}")
    return [result for result in results if result.metric == metric]


def _cell(runs: list[RunResult]) -> Cell:
    """Mean and sample std over the seeds of one (method, language)."""
    sides = {run.english_side for run in runs}
    if len(sides) > 1:
        raise FlareError(
            f"{runs[0].method} on {runs[0].language} mixes English sides {sorted(sides)} "
            "across seeds"
        )
    scores = np.array([run.score for run in runs], dtype=float)
    return Cell(
        mean=float(scores.mean()),
        std=float(scores.std(ddof=1)) if len(scores) > 1 else None,
        seeds=tuple(sorted(run.seed for run in runs)),
        english_side=sides.pop(),
    )


def aggregate(
    results: Sequence[RunResult],
    *,
    metric: str | None = None,
    methods: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
) -> ResultsTable:
    """Aggregate runs of one metric over seeds into a :class:`ResultsTable`.

    Methods and languages keep their first-seen order in ``results`` unless
    ``methods`` / ``languages`` give an order (and a selection). Results that
    mix metrics need ``metric=``. A (method, language, seed) may occur once.
    """
    if not results:
        raise FlareError("no results to aggregate")
    chosen = _select_metric(results, metric)
    method_order = _ordered((r.method for r in chosen), methods, "methods")
    language_order = _ordered((r.language for r in chosen), languages, "languages")
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for result in chosen:
        if result.method in method_order and result.language in language_order:
            groups.setdefault((result.method, result.language), []).append(result)
    for (method, language), runs in groups.items():
        seeds = [run.seed for run in runs]
        if len(set(seeds)) != len(seeds):
            raise FlareError(f"{method} on {language} has a seed twice: {sorted(seeds)}")
    cells = {key: _cell(runs) for key, runs in groups.items()}

    averages: dict[str, float | None] = {}
    for method in method_order:
        means = [cells[(method, lang)].mean for lang in language_order if (method, lang) in cells]
        averages[method] = float(np.mean(means)) if len(means) == len(language_order) else None

    complete = [lang for lang in language_order if all((m, lang) in cells for m in method_order)]
    rank_rows = [average_ranks([cells[(m, lang)].mean for m in method_order]) for lang in complete]
    avg_ranks: dict[str, float | None] = {
        method: float(np.mean([row[i] for row in rank_rows])) if rank_rows else None
        for i, method in enumerate(method_order)
    }
    return ResultsTable(
        metric=chosen[0].metric,
        methods=method_order,
        languages=language_order,
        cells=cells,
        averages=averages,
        avg_ranks=avg_ranks,
    )


def english_side_line(table: ResultsTable) -> str:
    """One sentence saying which English each method saw at test time."""
    by_side: dict[str, list[str]] = {}
    for method in table.methods:
        label = " / ".join(ENGLISH_SIDES[side] for side in table.english_sides(method))
        by_side.setdefault(label, []).append(method)
    parts = [f"{label} for {', '.join(methods)}" for label, methods in by_side.items()]
    return "English at test time: " + "; ".join(parts) + "."


def _best(values: dict[str, float | None], digits: int, lowest: bool = False) -> set[str]:
    """The methods whose value, as displayed, is the best of the column."""
    shown = {m: round(v, digits) for m, v in values.items() if v is not None}
    if not shown:
        return set()
    target = min(shown.values()) if lowest else max(shown.values())
    return {m for m, v in shown.items() if v == target}


def _bold(text: str, on: bool) -> str:
    """``text`` in Markdown bold when ``on``."""
    return f"**{text}**" if on else text


def to_markdown(
    table: ResultsTable,
    title: str | None = None,
    english_side_note: str | None = None,
    *,
    notes: Sequence[str] = (),
    digits: int = 2,
) -> str:
    """A Markdown table: methods x (languages, Avg, Avg rank), best per column in bold.

    Cells read "mean ± std" where several seeds were run; a line under the table
    names the cells that ran fewer seeds than the most. Another line says which
    English each method saw at test time; ``english_side_note`` adds detail to it
    (e.g. which MT system produced the English). ``notes`` are further lines under it
    (e.g. how good the English task model is).
    """
    header = ["Method", *table.languages, "Avg", "Avg rank"]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    best = {
        lang: _best(
            {m: c.mean for (m, lg), c in table.cells.items() if lg == lang},
            digits,
        )
        for lang in table.languages
    }
    best_avg = _best(table.averages, digits)
    best_rank = _best(table.avg_ranks, digits, lowest=True)
    for method in table.methods:
        row = [method]
        for lang in table.languages:
            cell = table.cells.get((method, lang))
            if cell is None:
                row.append("–")
                continue
            text = f"{cell.mean:.{digits}f}"
            if cell.std is not None:
                text += f" ± {cell.std:.{digits}f}"
            row.append(_bold(text, method in best[lang]))
        average, rank = table.averages[method], table.avg_ranks[method]
        row.append("–" if average is None else _bold(f"{average:.{digits}f}", method in best_avg))
        row.append("–" if rank is None else _bold(f"{rank:.2f}", method in best_rank))
        lines.append("| " + " | ".join(row) + " |")
    label = METRIC_LABELS.get(table.metric, table.metric)
    seeds = sorted({seed for cell in table.cells.values() for seed in cell.seeds})
    listed = ", ".join(map(str, seeds))
    if table.multi_seed:
        over_seeds = f"mean ± sample std over seeds {listed}"
    else:
        over_seeds = f"seed {listed}" if len(seeds) == 1 else f"one run each, seeds {listed}"
    side = english_side_line(table)
    if english_side_note:
        side = f"{side} {english_side_note}"
    lines += ["", f"{label} (%), {over_seeds}; best per column in bold; Avg rank: 1 = best."]
    if table.multi_seed and (fewer := _fewer_seeds(table)):
        lines.append(fewer)
    lines += [side, *notes]
    return "\n".join(lines) + "\n"


def english_task_model_line(stage1: dict[str, Any]) -> str:
    """How good the English task model is, from its ``stage1.json`` record.

    E.g. "English task model (stage 1, best of 520 steps at step 312): Accuracy 57.13 %
    on English validation." (the steps are left out where the record lacks them).
    """
    scores = stage1.get("english_validation") or {}
    listed = ", ".join(
        f"{METRIC_LABELS.get(name, name)} {value:.2f} %" for name, value in scores.items()
    )
    steps, best = stage1.get("train_steps"), stage1.get("best_step")
    trained = "stage 1"
    if steps is not None:
        trained += (
            f", {steps} steps"
            if best in (None, steps)
            else f", best of {steps} steps at step {best}"
        )
    return f"English task model ({trained}): {listed or 'no score recorded'} on English validation."


def _fewer_seeds(table: ResultsTable) -> str:
    """E.g. "Fewer seeds: zero_shot (seed 42); lora on ace (seeds 42, 43)." ("" if none)."""
    most = max(len(cell.seeds) for cell in table.cells.values())
    parts = []
    for method in table.methods:
        languages_by_seeds: dict[tuple[int, ...], list[str]] = {}
        for language in table.languages:
            cell = table.cells.get((method, language))
            if cell is not None and len(cell.seeds) < most:
                languages_by_seeds.setdefault(cell.seeds, []).append(language)
        for seeds, languages in languages_by_seeds.items():
            where = "" if len(languages) == len(table.languages) else " on " + ", ".join(languages)
            noun = "seeds" if len(seeds) > 1 else "seed"
            parts.append(f"{method}{where} ({noun} {', '.join(map(str, seeds))})")
    return f"Fewer seeds: {'; '.join(parts)}." if parts else ""


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`VERSIONED_PACKAGES` (None if absent), Python and platform."""
    versions: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    versions["platform"] = platform.platform()
    return versions


def _json_default(value: Any) -> Any:
    """Serialise the non-JSON types a config commonly holds."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_results_json(
    path: str | os.PathLike[str],
    results: Sequence[RunResult],
    config: dict[str, Any],
    provenance: dict[str, Any],
    timings: dict[str, Any],
) -> Path:
    """Write results.json atomically (temp file + ``os.replace``); returns the path.

    The file holds the full ``config``, the seeds, :func:`package_versions`,
    the data ``provenance`` (datasets, revisions, translation systems), the
    ``timings`` and every run.
    """
    path = Path(path)
    document = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "seeds": sorted({result.seed for result in results}),
        "versions": package_versions(),
        "provenance": provenance,
        "timings": timings,
        "results": [asdict(result) for result in results],
    }
    try:
        text = json.dumps(document, indent=2, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as error:
        raise FlareError(f"cannot write {path}: {error}") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, text + "\n")


def read_results_json(path: str | os.PathLike[str]) -> list[RunResult]:
    """The runs stored in a results.json written by :func:`write_results_json`."""
    path = Path(path)
    try:
        document = read_json_object(path)
    except FileNotFoundError as error:
        raise FlareError(f"no results file at {path}") from error
    if document.get("schema") != SCHEMA:
        raise FlareError(f"{path} is not a flare-xlt results file")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise FlareError(
            f"{path} has results schema version {document.get('schema_version')}; "
            f"this flare-xlt reads version {SCHEMA_VERSION}"
        )
    return [RunResult.from_dict(entry) for entry in document["results"]]
