"""Plots of a :class:`~flare_xlt.evaluate.report.ResultsTable`: grouped bars and a heatmap.

Figures are drawn on matplotlib's Agg canvas directly, so pyplot's global state is untouched.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from flare_xlt.evaluate.report import METRIC_LABELS, ResultsTable, english_side_line


def _figure_title(table: ResultsTable, title: str | None, width_chars: int) -> str:
    """``title`` (or the metric) over the English-side line, wrapped to the figure width."""
    heading = title or METRIC_LABELS.get(table.metric, table.metric)
    side = textwrap.fill(
        english_side_line(table).rstrip("."), width=width_chars, break_on_hyphens=False
    )
    return f"{heading}\n{side}"


def _new_figure(width: float, height: float) -> Any:
    """A matplotlib figure on the Agg canvas, without touching pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=150)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Lay out and save ``figure`` as a PNG at ``path``."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _y_floor(table: ResultsTable) -> float:
    """A round lower y limit a little under the lowest bar, so differences stay visible."""
    low = min(cell.mean - (cell.std or 0.0) for cell in table.cells.values())
    high = max(cell.mean + (cell.std or 0.0) for cell in table.cells.values())
    return max(0.0, 5.0 * math.floor((low - 0.25 * max(high - low, 4.0)) / 5.0))


def plot_results(
    table: ResultsTable, path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Save a grouped bar chart (PNG): languages on x plus an Avg group, one bar per method.

    Error bars show the sample std over seeds; the average of each method is
    written on its bar. The y axis starts a little under the lowest score (not
    at 0), so that differences of a point or two are visible. ``title`` should
    name the task and backbone (e.g. "XNLI, Llama 3.1 8B"); the English side
    is added below it.
    """
    groups = [*table.languages, "Avg"]
    n_methods = len(table.methods)
    width = 0.8 / n_methods
    figure_width = min(14.0, max(6.0, 2.0 + 0.17 * len(groups) * (n_methods + 1)))
    figure = _new_figure(figure_width, 4.8)
    axes = figure.add_subplot()
    x = np.arange(len(groups), dtype=float)
    x[-1] += 0.5  # set the average apart from the languages
    axes.axvspan(x[-1] - 0.5, x[-1] + 0.5, color="0.95", zorder=0)
    floor = _y_floor(table)
    for index, method in enumerate(table.methods):
        heights, errors = [], []
        for lang in table.languages:
            cell = table.cells.get((method, lang))
            heights.append(np.nan if cell is None else cell.mean)
            errors.append(0.0 if cell is None or cell.std is None else cell.std)
        average = table.averages[method]
        heights.append(np.nan if average is None else average)
        errors.append(0.0)
        offsets = x + (index - (n_methods - 1) / 2) * width
        axes.bar(
            offsets,
            np.array(heights) - floor,
            width * 0.9,
            bottom=floor,
            yerr=errors if any(errors) else None,
            color=f"C{index % 10}",
            label=method,
            error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "0.3"},
        )
        if average is not None:
            axes.annotate(
                f"{average:.1f}",
                (offsets[-1], average),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90 if n_methods > 3 else 0,
            )
    axes.set_xticks(x, groups)
    axes.get_xticklabels()[-1].set_fontweight("bold")
    axes.set_xlim(x[0] - 0.6, x[-1] + 0.6)
    axes.set_ylim(bottom=floor)
    axes.margins(y=0.12)
    axes.set_ylabel(f"{METRIC_LABELS.get(table.metric, table.metric)} (%)")
    axes.grid(axis="y", color="0.88", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncol=min(n_methods, 5),
        frameon=False,
        fontsize=8,
    )
    axes.set_title(_figure_title(table, title, int(figure_width * 12)), fontsize=10)
    return _save(figure, path)


def plot_heatmap(
    table: ResultsTable, path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Save a heatmap (PNG) of methods x (languages, Avg), each cell labelled with its score.

    The colour is the cell's difference from the mean of all methods on that
    language (green above, red below), so that every column shows who wins
    there whatever the language's difficulty.
    """
    groups = [*table.languages, "Avg"]
    scores = np.full((len(table.methods), len(groups)), np.nan)
    for row, method in enumerate(table.methods):
        for column, lang in enumerate(table.languages):
            if (cell := table.cells.get((method, lang))) is not None:
                scores[row, column] = cell.mean
        if (average := table.averages[method]) is not None:
            scores[row, -1] = average
    present = ~np.isnan(scores)
    column_means = np.nansum(scores, axis=0) / np.maximum(present.sum(axis=0), 1)
    deltas = scores - column_means
    limit = max(float(np.nanmax(np.abs(deltas))), 0.5)
    figure_width = min(16.0, max(6.0, 2.5 + 0.75 * len(groups)))
    figure = _new_figure(figure_width, 1.6 + 0.45 * len(table.methods))
    axes = figure.add_subplot()
    image = axes.imshow(deltas, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    for row in range(scores.shape[0]):
        for column in range(scores.shape[1]):
            value, delta = scores[row, column], deltas[row, column]
            axes.text(
                column,
                row,
                "–" if np.isnan(value) else f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(delta) > 0.65 * limit else "black",
                fontweight="bold" if column == len(groups) - 1 else "normal",
            )
    axes.axvline(len(groups) - 1.5, color="white", linewidth=3)
    axes.set_xticks(range(len(groups)), groups)
    axes.set_yticks(range(len(table.methods)), table.methods)
    axes.tick_params(length=0)
    axes.spines[:].set_visible(False)
    colourbar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    colourbar.set_label("points vs. mean of methods", fontsize=8)
    colourbar.ax.tick_params(labelsize=7)
    metric = METRIC_LABELS.get(table.metric, table.metric)
    heading = f"{title}: {metric} (%)" if title else f"{metric} (%)"
    axes.set_title(_figure_title(table, heading, int(figure_width * 12)), fontsize=10)
    return _save(figure, path)
