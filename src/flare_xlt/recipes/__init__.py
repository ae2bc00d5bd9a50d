"""Recipes: stage 1 (English task model), stage-2 methods, and the experiment grid."""

from flare_xlt.recipes.config import (
    AdapterArgs,
    DataArgs,
    ExperimentConfig,
    TrainArgs,
    load_config,
)
from flare_xlt.recipes.demo import demo_settings
from flare_xlt.recipes.experiment import combine_reports, grid, run_experiment, write_report
from flare_xlt.recipes.methods import METHODS, Method, get_method
from flare_xlt.recipes.prediction import PredictionSummary, predict
from flare_xlt.recipes.stage1 import run_stage1
from flare_xlt.recipes.stage2 import Cell, evaluate_language, prepare_method, run_cell

__all__ = [
    "METHODS",
    "AdapterArgs",
    "Cell",
    "DataArgs",
    "ExperimentConfig",
    "Method",
    "PredictionSummary",
    "TrainArgs",
    "combine_reports",
    "demo_settings",
    "evaluate_language",
    "get_method",
    "grid",
    "load_config",
    "predict",
    "prepare_method",
    "run_cell",
    "run_experiment",
    "run_stage1",
    "write_report",
]
