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
        stage1_language: where stage 1 (the English task model) gets its English: None
            (the default) reads the English side of the first language's pairs; a
            language (TyDiQA: ``"english"``) reads that language's own train and
            validation splits of this task, for tasks whose examples have no English side.
        without_english: None when every example pairs its target side with English;
            otherwise the one-line reason, naming the alternative, that refuses the
            methods needing that English side (translate-test, input fusion, FLARE, X-Mixup).
    """

    name: str
    kind: str
    label_names: tuple[str, ...]
    metric: str
    prompt: PromptTemplate
    stage1_language: str | None = None
    without_english: str | None = None

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
        if not self.has_english_side and self.stage1_language is None:
            raise FlareError(
                f"task {self.name!r} has no English side: name the language stage 1 trains "
                "on (stage1_language)"
            )

    @property
    def has_english_side(self) -> bool:
        """Whether every example pairs its target side with English (``source_*``)."""
        return self.without_english is None


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
        TaskSpec(
            "tydiqa",
            "qa",
            (),
            "squad",
            get_template("tydiqa"),
            stage1_language="english",
            without_english=(
                "TyDiQA has no English side; for FLARE on QA use task=xquad (English pairs)"
            ),
        ),
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
