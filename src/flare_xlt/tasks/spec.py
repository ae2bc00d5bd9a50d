"""Task specifications: what kind of task, its labels, its metric and its prompt."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from flare_xlt.errors import FlareError
from flare_xlt.tasks.prompts import PromptTemplate, get_template

KINDS = ("classification", "qa")
METRICS = ("macro_f1", "accuracy", "squad")


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Attributes:
        name: task name (``"xnli"``, or the user's name for their own data).
        kind: ``"classification"`` or ``"qa"`` (extractive).
        label_names: the classes, in label-index order (empty for QA).
        metric: ``"macro_f1"``, ``"accuracy"`` or ``"squad"`` (exact match and F1).
        prompt: the default (English) prompt template for LLMs.
    """

    name: str
    kind: str
    label_names: tuple[str, ...]
    metric: str
    prompt: PromptTemplate

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FlareError(f"task kind must be one of {KINDS}, not {self.kind!r}")
        if self.metric not in METRICS:
            raise FlareError(f"metric must be one of {METRICS}, not {self.metric!r}")
        if self.kind == "qa" and self.label_names:
            raise FlareError(f"QA task {self.name!r} takes no label names")
        if self.kind == "classification":
            if len(self.label_names) < 2:
                raise FlareError(f"task {self.name!r} needs at least two label names")
            if len(set(self.label_names)) != len(self.label_names):
                raise FlareError(f"task {self.name!r} has duplicate label names")
            if self.prompt.verbalizers and len(self.prompt.verbalizers) != len(self.label_names):
                raise FlareError(f"task {self.name!r}: one verbalizer per label is needed")


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "nusax_senti",
            "classification",
            ("negative", "neutral", "positive"),
            "macro_f1",
            get_template("nusax_senti"),
        ),
        TaskSpec(
            "xnli",
            "classification",
            ("entailment", "neutral", "contradiction"),
            "accuracy",
            get_template("xnli"),
        ),
        TaskSpec("tydiqa", "qa", (), "squad", get_template("tydiqa")),
        TaskSpec("xquad", "qa", (), "squad", get_template("xquad")),
    )
}


def get_task_spec(name: str) -> TaskSpec:
    """The built-in task ``name`` (case-insensitive, ``-`` read as ``_``)."""
    key = name.strip().lower().replace("-", "_")
    if key in TASKS:
        return TASKS[key]
    close = difflib.get_close_matches(key, TASKS, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise FlareError(f"unknown task {name!r}{hint} (built-in tasks: {', '.join(TASKS)})")
