"""The settings of a training run: what a stage config gives (:class:`TrainArgs`) and
everything :func:`~flare_xlt.training.loop.train` reads (:class:`TrainingArguments`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from flare_xlt.errors import FlareError

MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass(kw_only=True)
class TrainArgs:
    """How one stage optimises: the settings an experiment config gives each stage.

    Attributes:
        learning_rate: peak AdamW learning rate (after linear warmup, then linear decay to 0).
        num_epochs: passes over the data (may be fractional); ignored when ``max_steps`` is set.
        max_steps: total optimizer steps; overrides ``num_epochs``.
        batch_size: examples per device per forward pass.
        gradient_accumulation_steps: forward passes per optimizer step.
        warmup_ratio: share of the optimizer steps spent warming up linearly.
        weight_decay: AdamW decay for matrices (never for 1-D biases, norms and gates).
        save_every_steps: checkpoint every N optimizer steps; a checkpoint is also written
            after every evaluation and at the end.
        eval_every_steps: evaluate every N optimizer steps; ``None`` = at the end of each
            epoch. The final step is always evaluated (when ``eval_fn`` is given).
        early_stopping_patience: stop after this many evaluations without improvement.
        group_by_length: batch examples of similar length together (less padding, faster
            steps; see :mod:`flare_xlt.training.sampling`); the order is still seeded per epoch.
        seed: seeds model-side randomness (dropout) and the per-epoch data order.
    """

    learning_rate: float = 2e-4
    num_epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    save_every_steps: int | None = 50
    eval_every_steps: int | None = None
    early_stopping_patience: int | None = None
    group_by_length: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        positive = {
            "learning_rate": self.learning_rate,
            "num_epochs": self.num_epochs,
            "batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_steps": self.max_steps,
            "save_every_steps": self.save_every_steps,
            "eval_every_steps": self.eval_every_steps,
            "early_stopping_patience": self.early_stopping_patience,
        }
        self._require_positive(positive)
        if not 0.0 <= self.warmup_ratio < 1.0:
            self._invalid("warmup_ratio", "must be in [0, 1)")
        if self.weight_decay < 0:
            self._invalid("weight_decay", "must be >= 0")

    def _require_positive(self, values: dict) -> None:
        for name, value in values.items():
            if value is not None and not value > 0:
                self._invalid(name, "must be > 0")

    def _invalid(self, name: str, rule: str) -> None:
        raise FlareError(f"{type(self).__name__}.{name} {rule}, got {getattr(self, name)!r}")


@dataclass(kw_only=True)
class TrainingArguments(TrainArgs):
    """Settings of one training run: :class:`TrainArgs` plus where and how it runs.

    Attributes:
        output_dir: checkpoints, final weights, ``result.json`` and TensorBoard logs.
        save_every_steps: as in :class:`TrainArgs`, but off by default here.
        max_grad_norm: clip the global gradient norm to this value; ``None`` = no clipping.
        keep_checkpoints: how many of the newest checkpoints to keep (the best is kept too).
        log_every_steps: log the mean loss over this many optimizer steps.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (passed to ``Accelerator``;
            overrides the launcher's setting).
        progress: show a progress bar (main process only).
        run_settings: whatever else the run's result depends on (data, prompt, adapter),
            as a JSON-able dict; a checkpoint or finished run with other ``run_settings``
            is refused, like one with another learning rate.
    """

    output_dir: str | Path = field(kw_only=False)
    save_every_steps: int | None = None
    max_grad_norm: float | None = 1.0
    keep_checkpoints: int = 2
    log_every_steps: int = 10
    mixed_precision: str = "no"
    progress: bool = True
    run_settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.output_dir = Path(self.output_dir)
        self._require_positive(
            {
                "max_grad_norm": self.max_grad_norm,
                "keep_checkpoints": self.keep_checkpoints,
                "log_every_steps": self.log_every_steps,
            }
        )
        if self.mixed_precision not in MIXED_PRECISION:
            self._invalid("mixed_precision", f"must be one of {MIXED_PRECISION}")

    def to_dict(self) -> dict:
        return {**asdict(self), "output_dir": str(self.output_dir)}
