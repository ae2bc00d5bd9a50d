"""The experiment grid: stage 1 once, then methods x languages x seeds, then the report."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from tqdm.auto import tqdm

from flare_xlt.evaluate import (
    RunResult,
    aggregate,
    plot_results,
    to_markdown,
    write_results_json,
)
from flare_xlt.recipes.config import ExperimentConfig
from flare_xlt.recipes.methods import get_method
from flare_xlt.recipes.stage1 import run_stage1
from flare_xlt.recipes.stage2 import Cell, run_cell
from flare_xlt.tasks import get_task_spec

logger = logging.getLogger("flare_xlt")


def grid(config: ExperimentConfig) -> list[Cell]:
    """The cells to run. Methods without training are deterministic: one seed only."""
    cells = []
    for name in config.methods:
        method = get_method(name)
        seeds = config.seeds if method.trains else config.seeds[:1]
        if method.trains and config.joint_languages:
            groups = [tuple(config.languages)]
        else:
            groups = [(language,) for language in config.languages]
        cells += [Cell(name, group, seed) for group in groups for seed in seeds]
    return cells


def run_experiment(config: ExperimentConfig, progress: bool = True) -> dict:
    """Run (or resume) the whole grid; writes results.json, results.md and results.png."""
    root = config.root
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    start = time.perf_counter()
    stage1_dir = run_stage1(config, progress)
    timings = {"stage1_seconds": time.perf_counter() - start}
    results: list[RunResult] = []
    cells = grid(config)
    for cell in tqdm(cells, desc="grid", disable=not progress, unit="cell"):
        cell_start = time.perf_counter()
        results += run_cell(config, cell, stage1_dir, progress)
        timings[cell.name] = time.perf_counter() - cell_start
    return write_report(config, results, timings)


def write_report(config: ExperimentConfig, results: list[RunResult], timings: dict) -> dict:
    """results.json (with config, versions, provenance, timings), results.md and results.png."""
    spec = get_task_spec(config.task)
    root = config.root
    methods = list(dict.fromkeys(r.method for r in results))
    table = aggregate(results, methods=methods, languages=config.languages)
    title = f"{config.task} · {config.backbone} · {spec.metric}"
    markdown = to_markdown(table, title=title)
    provenance = {
        "task": config.task,
        "data_dir": str(config.data.data_dir or "default (FLARE_DATA_DIR or ../shared/data)"),
        "english_side_at_test": config.data.english_side,
        "stage1": json.loads((root / "stage1" / "stage1.json").read_text()),
    }
    write_results_json(root / "results.json", results, config.to_dict(), provenance, timings)
    (root / "results.md").write_text(markdown.rstrip("\n") + "\n")
    plot_results(table, root / "results.png", title=title)
    return {"table": table, "markdown": markdown, "root": Path(root)}
