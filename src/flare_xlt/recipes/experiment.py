"""The experiment grid: stage 1 once, then methods x languages x seeds, then the report."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from flare_xlt.errors import FlareError
from flare_xlt.evaluate import (
    RunResult,
    aggregate,
    english_task_model_line,
    plot_results,
    read_results_json,
    to_markdown,
    write_results_json,
)
from flare_xlt.fileio import read_json_object
from flare_xlt.recipes.config import ExperimentConfig, from_dict
from flare_xlt.recipes.data import check_languages, data_provenance, task_spec
from flare_xlt.recipes.methods import get_method
from flare_xlt.recipes.stage1 import MARKER as STAGE1_MARKER
from flare_xlt.recipes.stage1 import run_stage1
from flare_xlt.recipes.stage2 import Cell, adapter_settings, load_cell_results, run_cell
from flare_xlt.training.distributed import is_main_process, wait_for_everyone

logger = logging.getLogger("flare_xlt")


def grid(config: ExperimentConfig) -> list[Cell]:
    """The cells to run, in the order that fills the results table row by row.

    Seed by seed, then language by language, then method by method, so a grid that is
    stopped part-way leaves complete rows. Methods without training are deterministic:
    one seed only. With ``joint_languages`` each training method is one cell on all
    languages, run after that seed's per-language cells.
    """
    cells = []
    for name in config.methods:
        method = get_method(name)
        seeds = config.seeds if method.trains else config.seeds[:1]
        if method.trains and config.joint_languages:
            groups = [tuple(config.languages)]
        else:
            groups = [(language,) for language in config.languages]
        cells += [Cell(name, group, seed) for group in groups for seed in seeds]

    def position(cell: Cell) -> tuple[int, int, int]:
        joint = len(cell.train_languages) > 1
        row = len(config.languages) if joint else config.languages.index(cell.train_languages[0])
        return config.seeds.index(cell.seed), row, config.methods.index(cell.method)

    return sorted(cells, key=position)


def run_experiment(
    config: ExperimentConfig, progress: bool = True, report_only: bool = False
) -> dict:
    """Run (or resume) the whole grid; writes results.json, results.md and results.png.

    With ``report_only`` nothing is trained: the table holds the grid's finished cells
    (e.g. while other processes are still filling it).
    """
    if report_only:
        return _report_finished(config)
    check_languages(config)
    stage1_dir = run_stage1(config, progress)
    finished: list[tuple[Cell, list[RunResult]]] = []
    report = {}
    for cell in tqdm(grid(config), desc="grid", disable=not progress, unit="cell"):
        if (done := load_cell_results(config, cell)) is None:
            done = run_cell(config, cell, stage1_dir, progress)
        finished.append((cell, done))
        report = write_report(config, finished)  # a partial table after every cell
    return report


def _report_finished(config: ExperimentConfig) -> dict:
    loaded = [(cell, load_cell_results(config, cell)) for cell in grid(config)]
    finished = [(cell, done) for cell, done in loaded if done is not None]
    if not finished:
        raise FlareError(f"no finished cell of this grid under {config.root / 'cells'}")
    return write_report(config, finished)


def write_report(config: ExperimentConfig, finished: list[tuple[Cell, list[RunResult]]]) -> dict:
    """Write results.json (config, versions, provenance, timings), .md, .png and config.json.

    ``finished`` pairs each finished cell with its results. The timings are those that
    stage1.json and the cells recorded when they were computed (see :func:`recorded_timings`),
    so a resumed or ``--report-only`` run reports the same ones. Every process builds the
    table; only the main one writes the files.
    """
    stage1_record = config.stage1_root / STAGE1_MARKER
    if not stage1_record.is_file():
        raise FlareError(
            f"{stage1_record} is missing: the report records which English task model the "
            "cells used; restore it from version control"
        )
    stage1 = read_json_object(stage1_record)
    results = [result for _, done in finished for result in done]
    spec = task_spec(config)
    root = config.report_root
    methods = list(dict.fromkeys(r.method for r in results))
    languages = [lang for lang in config.languages if any(r.language == lang for r in results)]
    table = aggregate(results, methods=methods, languages=languages)  # may be a partial grid
    title = f"{config.task} · {config.backbone} · {spec.metric}"
    markdown = to_markdown(table, title=title, notes=[english_task_model_line(stage1)])
    provenance = {
        "task": config.task,
        **data_provenance(config),
        "english_side_at_test": config.data.english_side,
        "stage1": stage1,
    }
    timings = recorded_timings(stage1, finished)
    if is_main_process():
        root.mkdir(parents=True, exist_ok=True)
        (root / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        write_results_json(root / "results.json", results, config.to_dict(), provenance, timings)
        (root / "results.md").write_text(markdown.rstrip("\n") + "\n")
        plot_results(table, root / "results.png", title=title)
    wait_for_everyone()
    return {"table": table, "markdown": markdown, "root": Path(root)}


def recorded_timings(stage1: dict, finished: list[tuple[Cell, list[RunResult]]]) -> dict:
    """The seconds the runs that computed them recorded, for results.json.

    ``stage1_train_seconds`` from stage1.json; per cell ``train_seconds`` (its training,
    resumed runs included; absent for methods that train nothing) and ``eval_seconds``
    (scoring all its test languages), from its results. A time nobody recorded is left out.
    """
    timings: dict = {}
    if "train_seconds" in stage1:
        timings["stage1_train_seconds"] = stage1["train_seconds"]
    timings["cells"] = {cell.name: _cell_timings(done) for cell, done in finished}
    return timings


def _cell_timings(results: list[RunResult]) -> dict[str, float]:
    """``train_seconds`` (one training serves all of a cell's languages) and ``eval_seconds``."""
    timings = {}
    if "train_seconds" in results[0].extra:
        timings["train_seconds"] = results[0].extra["train_seconds"]
    evaluated = [r.extra["eval_seconds"] for r in results if "eval_seconds" in r.extra]
    if evaluated:
        timings["eval_seconds"] = sum(evaluated)
    return timings


def combine_reports(
    paths: list[Path], output_dir: Path, label_key: str | None = None, title: str | None = None
) -> str:
    """One table from several experiments' results.json (e.g. an ablation run as separate grids).

    With ``label_key`` (a dotted config key such as ``adapter.fusion``) a method that comes
    from several experiments is renamed ``"method [fusion=value]"`` after each experiment's
    setting; a method found in one experiment only (a baseline row) keeps its name.
    Returns the Markdown table.
    """
    runs_per_path = [read_results_json(path) for path in paths]
    experiments = Counter(method for runs in runs_per_path for method in {r.method for r in runs})
    results: list[RunResult] = []
    for path, runs in zip(paths, runs_per_path, strict=True):
        if label_key is not None:
            config = json.loads(Path(path).read_text())["config"]
            runs = [
                replace(r, method=f"{r.method} [{_label(config, label_key, path, r.method)}]")
                if experiments[r.method] > 1
                else r
                for r in runs
            ]
        results += runs
    table = aggregate(results)
    markdown = to_markdown(table, title=title)
    output_dir.mkdir(parents=True, exist_ok=True)
    sources = {"combined_from": [str(p) for p in paths], "label_key": label_key}
    write_results_json(output_dir / "results.json", results, sources, sources, {})
    (output_dir / "results.md").write_text(markdown.rstrip("\n") + "\n")
    plot_results(table, output_dir / "results.png", title=title)
    return markdown


def _label(config: dict, key: str, path: Path, method: str) -> str:
    """``"fusion=add"``: ``key``'s value in the experiment ``config``. An adapter setting left
    to its default is named as ``method``'s cells resolved it (``alignment=end`` for FLARE on
    a causal LM), not ``None``."""
    value = _dotted(config, key, path)
    section, _, field = key.partition(".")
    if value is None and section == "adapter":
        resolved = adapter_settings(from_dict(ExperimentConfig, config), get_method(method))
        value = getattr(resolved, field)
    return f"{key.rsplit('.', 1)[-1]}={value}"


def _dotted(config: dict, key: str, path: Path):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise FlareError(f"{path}: its config has no key {key!r}")
        node = node[part]
    return node
