"""What one training run keeps between calls of :func:`~flare_xlt.training.loop.train`.

The loop state a checkpoint carries and the result a finished run keeps; where a run
resumes (its newest usable checkpoint) and whether it already finished (``result.json``
and ``final/``), both refused when they belong to a run with other settings (the
fingerprint); and how a run is finished (best weights into ``final/``, then the marker).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from accelerate import Accelerator
from torch import nn

from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object, remove_dir_atomically
from flare_xlt.records import check_record, make_record, write_record
from flare_xlt.training import checkpoint as ckpt
from flare_xlt.training.args import TrainingArguments
from flare_xlt.training.distributed import info_on_main

logger = logging.getLogger(__name__)

FINAL_DIR = "final"
RESULT_FILE = "result.json"
# Settings that shape the optimisation trajectory: a resume must not change them.
_TRAJECTORY = (
    "learning_rate",
    "num_epochs",
    "max_steps",
    "batch_size",
    "gradient_accumulation_steps",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "seed",
    "mixed_precision",
    "group_by_length",
    "eval_every_steps",
    "early_stopping_patience",
    "run_settings",
)


@dataclass
class TrainResult:
    """What a run produced; also stored in ``output_dir/result.json``."""

    global_step: int
    epochs_completed: float
    best_metric: float | None
    best_step: int | None
    stopped_early: bool
    resumed_from_step: int | None
    train_seconds: float
    losses: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


@dataclass
class LoopState:
    """Everything about the loop's position that a checkpoint must carry."""

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    window_loss: float = 0.0  # sum of micro-batch losses since the last log line
    window_batches: int = 0


def resume_point(
    accelerator: Accelerator, model: nn.Module, args: TrainingArguments, fingerprint: dict
) -> tuple[Path | None, LoopState]:
    """The newest usable checkpoint (its weights loaded into ``model``) and its loop state.

    No checkpoint: training starts at step 0. Checkpoints newer than the one resumed
    (damaged, or needing damaged best weights) and damaged older ones are removed, as the
    resumed run writes those steps again.
    """
    if accelerator.is_main_process:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_stale_temp_dirs(args.output_dir)
    accelerator.wait_for_everyone()
    checkpoints = ckpt.list_checkpoints(args.output_dir)
    if not checkpoints:
        return None, LoopState()
    damage = {step: ckpt.checkpoint_damage(path) for step, path in checkpoints.items()}
    resume_step = _newest_usable(accelerator, checkpoints, damage)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for step, path in checkpoints.items():
            if step > resume_step or damage[step] is not None:
                remove_dir_atomically(path)
    accelerator.wait_for_everyone()
    resume_dir = checkpoints[resume_step]
    saved = read_json_object(resume_dir / ckpt.STATE_FILE)
    _check_fingerprint(saved, fingerprint, resume_dir, "checkpoint")
    ckpt.load_trainable_weights(model, resume_dir / ckpt.WEIGHTS_FILE)
    return resume_dir, LoopState(**saved["loop"])


def _newest_usable(
    accelerator: Accelerator, checkpoints: dict[int, Path], damage: dict[int, str | None]
) -> int:
    """The step of the newest checkpoint that is intact and whose best weights are too.

    Each one passed over is named in a warning with the reason; a FlareError (one line)
    when there is none.
    """
    reasons = []
    for step in sorted(checkpoints, reverse=True):
        reason = _unusable_because(step, checkpoints, damage)
        if reason is None:
            return step
        reasons.append(f"{checkpoints[step].name} {reason}")
        if accelerator.is_main_process:
            logger.warning("skipping %s, which %s", checkpoints[step], reason)
    root = checkpoints[max(checkpoints)].parent
    raise FlareError(
        f"no checkpoint in {root} can be resumed: delete it to train this run again from the "
        f"start ({'; '.join(reasons)})"
    )


def _unusable_because(
    step: int, checkpoints: dict[int, Path], damage: dict[int, str | None]
) -> str | None:
    """Why the checkpoint at ``step`` cannot be resumed, or None."""
    if damage[step] is not None:
        return f"is damaged: {damage[step]}"
    best = read_json_object(checkpoints[step] / ckpt.STATE_FILE)["loop"]["best_step"]
    best_intact = best in damage and damage[best] is None
    if best is None or best == step or best_intact:
        return None
    needs = f"cannot be resumed: the best checkpoint it refers to, step-{best}, is"
    return f"{needs} damaged: {damage[best]}" if best in damage else f"{needs} missing"


def run_fingerprint(args: TrainingArguments, num_examples: int, num_processes: int) -> dict:
    settings = {f.name: getattr(args, f.name) for f in fields(args) if f.name in _TRAJECTORY}
    return {**settings, "num_examples": num_examples, "num_processes": num_processes}


def checkpoint_record(fingerprint: dict, loop: LoopState, num_processes: int) -> dict:
    """What a checkpoint's ``trainer_state.json`` holds: the run's fingerprint and loop state."""
    return make_record("checkpoint", fingerprint, loop=asdict(loop), num_processes=num_processes)


def _check_fingerprint(saved: dict, current: dict, where: Path, kind: str, relevant=None) -> None:
    """FlareError (one line) unless ``saved`` records a run with the ``current`` fingerprint."""
    check_record(
        saved,
        current,
        where,
        "use a new output_dir or the original settings",
        kind=kind,
        problem="belongs to a run with other settings",
        relevant=relevant,
        show_values=True,
        old_fix=f"delete {where if kind == 'training' else where.parent.parent} to train this "
        "run again, or use a new output_dir",
    )


def _any_process_count(fingerprint: dict) -> dict:
    """A fingerprint less its process count: finished weights serve any (a resume does not)."""
    return {k: v for k, v in fingerprint.items() if k != "num_processes"}


def finish(
    accelerator: Accelerator, model: nn.Module, output_dir: Path, result: TrainResult, fp: dict
) -> None:
    """Load the best weights, write ``final/`` and then the ``result.json`` marker."""
    if result.best_step is not None:
        best = ckpt.checkpoint_dir(output_dir, result.best_step) / ckpt.WEIGHTS_FILE
        ckpt.load_trainable_weights(model, best)
    weights = ckpt.gather_trainable_state(accelerator, model)
    if accelerator.is_main_process:
        ckpt.write_weights_dir(weights, output_dir / FINAL_DIR)
        write_record(output_dir / RESULT_FILE, "training", fp, result=asdict(result))
    accelerator.wait_for_everyone()
    info_on_main(
        accelerator,
        "finished at step %d; best metric %s at step %s; weights in %s",
        result.global_step,
        result.best_metric,
        result.best_step,
        output_dir / FINAL_DIR,
    )


def finished_result(
    accelerator: Accelerator, model: nn.Module, output_dir: Path, fingerprint: dict
) -> TrainResult | None:
    """A finished run's result, its final weights loaded into ``model``; None if unfinished.

    Also None, with a warning, when ``result.json`` or ``final/`` is damaged: the run is
    then finished again from its checkpoints rather than trusted.
    """
    record = output_dir / RESULT_FILE
    if not record.is_file():
        return None
    saved, problem = _read_result(record)
    if saved is None:
        _distrust(accelerator, problem)
        return None
    _check_fingerprint(saved, fingerprint, output_dir, "training", _any_process_count)
    final = output_dir / FINAL_DIR
    if (reason := ckpt.directory_damage(final, (ckpt.WEIGHTS_FILE,))) is not None:
        _distrust(accelerator, f"{final} is damaged: {reason}")
        return None
    ckpt.load_trainable_weights(model, final / ckpt.WEIGHTS_FILE)
    info_on_main(accelerator, "%s already holds a finished run: loaded its weights", output_dir)
    return TrainResult(**saved["result"])


def _read_result(record: Path) -> tuple[dict | None, str]:
    """``(the saved result.json, "")``, or ``(None, what is wrong with it, naming it)``."""
    try:
        saved = read_json_object(record)
    except FlareError as err:
        return None, str(err)
    if "schema" not in saved:  # refused in one line by the fingerprint check
        return saved, ""
    if not isinstance(saved.get("result"), dict) or not isinstance(saved.get("settings"), dict):
        return None, f"{record} lacks the result or the settings of a training run"
    try:
        TrainResult(**saved["result"])
    except TypeError as err:
        return None, f"{record} holds no valid training result ({err})"
    return saved, ""


def _distrust(accelerator: Accelerator, problem: str) -> None:
    """Warn that a finished run's records are not trusted because of ``problem``."""
    if accelerator.is_main_process:
        logger.warning("%s; finishing the run again from its newest usable checkpoint", problem)
