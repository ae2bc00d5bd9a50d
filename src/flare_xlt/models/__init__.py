"""Backbone models: built-in offline models, their conversion cache, and loading.

``load_backbone`` accepts a built-in name, a local HF directory or a hub id;
``list_models`` / ``prepare_model`` manage the built-in models converted from PyPI packages.
"""

from flare_xlt.models.e5_reader import E5S1File, dequantize_q4_0, read_e5s1
from flare_xlt.models.loading import TASKS, load_backbone
from flare_xlt.models.prepare import prepare_model, verify_model
from flare_xlt.models.registry import BUILTIN_MODELS, BuiltinModel, get_builtin, list_models

__all__ = [
    "BUILTIN_MODELS",
    "TASKS",
    "BuiltinModel",
    "E5S1File",
    "dequantize_q4_0",
    "get_builtin",
    "list_models",
    "load_backbone",
    "prepare_model",
    "read_e5s1",
    "verify_model",
]
