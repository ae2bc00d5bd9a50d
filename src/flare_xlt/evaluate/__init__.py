"""Evaluation: task metrics, chrF of translations, and experiment reports (tables, JSON, plots)."""

from flare_xlt.evaluate.chrf import ChrF, chrf
from flare_xlt.evaluate.metrics import (
    METRICS,
    accuracy,
    compute_metric,
    macro_f1,
    normalize_answer,
    squad_exact_match,
    squad_f1,
    squad_scores,
)
from flare_xlt.evaluate.plots import plot_heatmap, plot_results
from flare_xlt.evaluate.report import (
    ENGLISH_SIDES,
    Cell,
    ResultsTable,
    RunResult,
    aggregate,
    average_ranks,
    english_side_line,
    english_task_model_line,
    package_versions,
    read_results_json,
    to_markdown,
    write_results_json,
)

__all__ = [
    "ENGLISH_SIDES",
    "METRICS",
    "Cell",
    "ChrF",
    "ResultsTable",
    "RunResult",
    "accuracy",
    "aggregate",
    "average_ranks",
    "chrf",
    "compute_metric",
    "english_side_line",
    "english_task_model_line",
    "macro_f1",
    "normalize_answer",
    "package_versions",
    "plot_heatmap",
    "plot_results",
    "read_results_json",
    "squad_exact_match",
    "squad_f1",
    "squad_scores",
    "to_markdown",
    "write_results_json",
]
