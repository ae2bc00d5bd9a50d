"""A generic, resumable training loop on ``accelerate`` (single process, DDP, FSDP, DeepSpeed).

``train(model, data, collate_fn, TrainingArguments(...))`` optimises the model's
``requires_grad`` parameters with AdamW and a linear warmup schedule. Distribution
comes from how the script is launched (``accelerate launch --config_file ...`` or
``torchrun``), not from this code.

Runs are restartable: checkpoints land in ``output_dir/checkpoints/step-<N>/`` (see
:mod:`flare_xlt.recipes.checkpoint`), and calling ``train`` again with the same
arguments continues from the newest intact one, replaying the exact data order and
RNG streams, so the result equals that of an uninterrupted run. A damaged checkpoint
(one that does not match its manifest) is skipped with a warning; if checkpoints exist
but none can be resumed, ``train`` fails with one line naming the folder to delete. A
finished run (``output_dir/result.json``) is not retrained: its best weights are loaded
and its result returned. If its ``result.json`` or ``final/`` is damaged, it is finished
again from its newest usable checkpoint (the last one holds the finished state, so
nothing is trained twice and nothing is lost).

Residual nondeterminism: the same run is only bit-identical on the same hardware and
software; GPU kernels may be nondeterministic unless
``torch.use_deterministic_algorithms(True)`` is set; a different number of processes
changes the data sharding, so resuming with another world size is refused.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import (
    DataLoaderConfiguration,
    broadcast_object_list,
    is_tensorboard_available,
    set_seed,
)
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object, remove_dir_atomically, write_json_atomically
from flare_xlt.jsonfile import differing_keys
from flare_xlt.recipes import checkpoint as ckpt
from flare_xlt.recipes.sampling import LengthGroupedSampler, example_length

logger = logging.getLogger(__name__)

MIXED_PRECISION = ("no", "bf16", "fp16")
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


class TrainingDiverged(FlareError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


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
            steps; see :mod:`flare_xlt.recipes.sampling`); the order is still seeded per epoch.
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
class _LoopState:
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


def train(
    model: nn.Module,
    train_data: Sequence,
    collate_fn: Callable[[list], dict],
    args: TrainingArguments,
    eval_fn: Callable[[nn.Module], float] | None = None,
    loss_fn: Callable[[nn.Module, dict], Tensor] | None = None,
) -> TrainResult:
    """Train ``model``'s ``requires_grad`` parameters; resume or return a finished run.

    Args:
        model: any ``nn.Module`` (e.g. a ``FlareModel``); it is trained in place and ends
            holding the best weights (the last ones without ``eval_fn``).
        train_data: a map-style dataset (``len`` and indexing).
        collate_fn: list of examples -> batch dict; tensors are moved to the device,
            other values (e.g. ``cache_keys``) are passed through unchanged.
        args: see :class:`TrainingArguments`.
        eval_fn: ``eval_fn(model) -> metric``, higher is better; called on the main
            process (on every process under FSDP/DeepSpeed) with the unwrapped model in
            eval mode under ``torch.no_grad``. Its random numbers do not affect training.
        loss_fn: ``loss_fn(prepared_model, batch) -> scalar loss``; default
            ``model(**batch).loss``. Call the model it receives (the DDP/FSDP wrapper).

    Raises:
        TrainingDiverged: the loss became NaN/inf (no checkpoint is written for that step).
        FlareError: bad settings, ``output_dir`` holds a run with other settings, or
            checkpoints none of which can be resumed (damaged, or from an older format).
    """
    if args.early_stopping_patience is not None and eval_fn is None:
        raise FlareError("early_stopping_patience needs an eval_fn to measure improvement")
    if len(train_data) == 0:
        raise FlareError("train_data is empty")
    accelerator = _make_accelerator(args)
    fingerprint = _fingerprint(args, len(train_data), accelerator.num_processes)
    finished = _finished_result(accelerator, model, args.output_dir, fingerprint)
    if finished is not None:
        return finished
    resume_dir, state = _resume_point(accelerator, model, args, fingerprint)
    resumed_from = state.global_step if resume_dir is not None else None

    set_seed(args.seed)
    optimizer = torch.optim.AdamW(
        _param_groups(model, args.weight_decay), lr=args.learning_rate, weight_decay=0.0
    )
    was_training = model.training
    prepared, optimizer, loader = accelerator.prepare(
        model, optimizer, _data_loader(train_data, collate_fn, args)
    )
    _check_accumulation(accelerator, args)
    steps_per_epoch = math.ceil(len(loader) / args.gradient_accumulation_steps)
    total_steps = args.max_steps or math.ceil(args.num_epochs * steps_per_epoch)
    # Not passed to prepare(): accelerate would step it once per process per step.
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(args.warmup_ratio * total_steps), total_steps
    )
    if resume_dir is not None:
        ckpt.load_checkpoint(accelerator, resume_dir, optimizer, scheduler)
        _info(accelerator, "resuming from %s (step %d)", resume_dir, resumed_from)
    if is_tensorboard_available():
        accelerator.init_trackers("tensorboard", config=_hparams(args))
    _info(
        accelerator,
        "training %d examples for %d steps (%d per epoch): batch size %d x %d accumulation "
        "x %d processes",
        len(train_data),
        total_steps,
        steps_per_epoch,
        args.batch_size,
        args.gradient_accumulation_steps,
        accelerator.num_processes,
    )
    loop = _Loop(
        accelerator, prepared, optimizer, scheduler, loader, args, eval_fn, loss_fn, fingerprint
    )
    try:
        if resume_dir is not None:
            ckpt.load_rng_state(accelerator, resume_dir)
        loop.run(state, steps_per_epoch, total_steps)
    finally:  # not accelerator.end_training(): that also destroys the caller's process group
        for tracker in accelerator.trackers:
            tracker.finish()
        model = accelerator.unwrap_model(prepared, keep_fp32_wrapper=False)
        model.train(was_training)
    result = TrainResult(
        global_step=state.global_step,
        epochs_completed=state.global_step / steps_per_epoch,
        best_metric=state.best_metric,
        best_step=state.best_step,
        stopped_early=state.stopped_early,
        resumed_from_step=resumed_from,
        train_seconds=state.train_seconds,
        losses=state.losses,
        history=state.history,
    )
    _finish(accelerator, model, args.output_dir, result, fingerprint)
    return result


class _Loop:
    """The epoch/step loop of one ``train`` call, with its evaluation and checkpoint rules."""

    def __init__(
        self, accelerator, model, optimizer, scheduler, loader, args, eval_fn, loss_fn, fingerprint
    ):
        self.accelerator = accelerator
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loader = loader
        self.args = args
        self.eval_fn = eval_fn
        self.loss_fn = loss_fn or _default_loss
        self.fingerprint = fingerprint
        self.step_lr = scheduler.get_last_lr()[0]  # the learning rate of the last step

    def run(self, state: _LoopState, steps_per_epoch: int, total_steps: int) -> None:
        args, accelerator = self.args, self.accelerator
        bar = tqdm(
            total=total_steps,
            initial=state.global_step,
            desc="train",
            disable=not (args.progress and accelerator.is_main_process),
        )
        started = time.perf_counter() - state.train_seconds
        self.model.train()
        while state.global_step < total_steps and not state.stopped_early:
            self.loader.set_epoch(state.epoch)  # the epoch's shuffle: seed + epoch
            batches = accelerator.skip_first_batches(
                self.loader, state.step_in_epoch * args.gradient_accumulation_steps
            )
            for batch in batches:
                if not self._micro_step(batch, state):
                    continue
                state.global_step += 1
                state.step_in_epoch += 1
                state.train_seconds = time.perf_counter() - started
                bar.update(1)
                self._log(state, steps_per_epoch)
                epoch_done = state.step_in_epoch == steps_per_epoch
                done = state.global_step >= total_steps
                evaluated = self._maybe_evaluate(state, epoch_done, done)
                if epoch_done:
                    state.epoch += 1
                    state.step_in_epoch = 0
                every = args.save_every_steps
                stop = done or state.stopped_early
                if evaluated or stop or (every and state.global_step % every == 0):
                    self._save(state)
                if stop:
                    break
        bar.close()
        if state.window_batches:  # a partial logging window at the very end
            state.losses.append(state.window_loss / state.window_batches)

    def _micro_step(self, batch: dict, state: _LoopState) -> bool:
        """One forward/backward; True when it completed an optimizer step."""
        accelerator = self.accelerator
        with accelerator.accumulate(self.model):
            loss = self.loss_fn(self.model, batch)
            value = accelerator.reduce(loss.detach().float(), "mean").item()
            if not math.isfinite(value):
                raise TrainingDiverged(self._diverged_message(value, state))
            accelerator.backward(loss)
            if accelerator.sync_gradients and self.args.max_grad_norm is not None:
                accelerator.clip_grad_norm_(self.model.parameters(), self.args.max_grad_norm)
            self.optimizer.step()
            if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                self.step_lr = self.scheduler.get_last_lr()[0]  # the rate this step used
                self.scheduler.step()
            self.optimizer.zero_grad()
        state.window_loss += value
        state.window_batches += 1
        return accelerator.sync_gradients

    def _diverged_message(self, loss: float, state: _LoopState) -> str:
        args = self.args
        clip = " or set max_grad_norm (e.g. 1.0)" if args.max_grad_norm is None else ""
        last_good = ckpt.latest_checkpoint(args.output_dir)
        kept = f"the last good one is {last_good}" if last_good else "none was written before"
        return (
            f"training diverged: the loss is {loss} at step {state.global_step + 1} "
            f"(epoch {state.epoch}); no checkpoint was written for it, {kept}. Lower the "
            f"learning_rate (now {args.learning_rate:g}){clip} and rerun in a new output_dir"
        )

    def _log(self, state: _LoopState, steps_per_epoch: int) -> None:
        if state.global_step % self.args.log_every_steps:
            return
        loss = state.window_loss / state.window_batches
        state.losses.append(loss)
        state.window_loss, state.window_batches = 0.0, 0
        lr = self.step_lr
        _info(
            self.accelerator,
            "step %d | epoch %.2f | loss %.4f | lr %.3e",
            state.global_step,
            state.global_step / steps_per_epoch,
            loss,
            lr,
        )
        self.accelerator.log({"train/loss": loss, "train/lr": lr}, step=state.global_step)

    def _maybe_evaluate(self, state: _LoopState, epoch_done: bool, done: bool) -> bool:
        """Evaluate when due; update best metric and patience. True if it evaluated."""
        every = self.args.eval_every_steps
        due = state.global_step % every == 0 if every else epoch_done
        if self.eval_fn is None or not (due or done):
            return False
        metric = self._evaluate()
        state.history.append({"step": state.global_step, "metric": metric})
        improved = math.isfinite(metric) and (
            state.best_metric is None or metric > state.best_metric
        )
        if improved:
            state.best_metric, state.best_step, state.bad_evals = metric, state.global_step, 0
        else:
            state.bad_evals += 1
        patience = self.args.early_stopping_patience
        state.stopped_early = patience is not None and state.bad_evals >= patience and not done
        _info(
            self.accelerator,
            "step %d | eval %.4f | best %.4f at step %d%s",
            state.global_step,
            metric,
            state.best_metric if state.best_metric is not None else float("nan"),
            state.best_step or 0,
            " | stopping early" if state.stopped_early else "",
        )
        self.accelerator.log({"eval/metric": metric}, step=state.global_step)
        return True

    def _evaluate(self) -> float:
        """``eval_fn`` on the main process (RNG isolated); the metric is shared with all.

        FSDP and DeepSpeed need every process in each forward pass of a sharded model, so
        there every process runs ``eval_fn`` and the main process's metric counts.
        """
        accelerator = self.accelerator
        everywhere = accelerator.distributed_type in ckpt.SHARDED
        result = [None]
        if everywhere or accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(self.model)
            unwrapped.eval()
            with ckpt.isolated_rng(), torch.no_grad():
                result[0] = float(self.eval_fn(unwrapped))
            unwrapped.train()
        broadcast_object_list(result)
        return result[0]

    def _save(self, state: _LoopState) -> None:
        accelerator, args = self.accelerator, self.args
        trainer_state = {
            "loop": asdict(state),
            "fingerprint": self.fingerprint,
            "num_processes": accelerator.num_processes,
        }
        directory = ckpt.checkpoint_dir(args.output_dir, state.global_step)
        ckpt.save_checkpoint(
            accelerator, self.model, self.optimizer, self.scheduler, trainer_state, directory
        )
        if accelerator.is_main_process:
            ckpt.prune_checkpoints(args.output_dir, args.keep_checkpoints, state.best_step)
        accelerator.wait_for_everyone()


# ---------------------------------------------------------------- helpers
def _info(accelerator: Accelerator, message: str, *args) -> None:
    """A plain log line, from the main process only."""
    if accelerator.is_main_process:
        logger.info(message, *args)


def _make_accelerator(args: TrainingArguments) -> Accelerator:
    """An Accelerator for the launch at hand; fails loudly if it lost processes."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        # torchrun on a machine without a GPU: accelerate forms a gloo group only with cpu=True
        cpu=world_size > 1 and not torch.cuda.is_available(),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        log_with="tensorboard" if is_tensorboard_available() else None,
        project_dir=str(args.output_dir),
    )
    if accelerator.num_processes != world_size:
        raise FlareError(
            f"launched as {world_size} processes but accelerate formed a group of "
            f"{accelerator.num_processes}: check the launcher settings"
        )
    return accelerator


def _check_accumulation(accelerator: Accelerator, args: TrainingArguments) -> None:
    """Refuse a launcher or DeepSpeed config that changed the accumulation steps: the step
    counts, the schedule and where a resume continues are all computed from ours."""
    if accelerator.gradient_accumulation_steps != args.gradient_accumulation_steps:
        raise FlareError(
            f"the launcher set {accelerator.gradient_accumulation_steps} gradient accumulation "
            f"steps (accelerate launch option, ACCELERATE_GRADIENT_ACCUMULATION_STEPS or the "
            f"DeepSpeed config), but the training settings say "
            f"{args.gradient_accumulation_steps}: set gradient_accumulation_steps in the "
            "config and leave the launcher's unset"
        )


def _resume_point(
    accelerator: Accelerator, model: nn.Module, args: TrainingArguments, fingerprint: dict
) -> tuple[Path | None, _LoopState]:
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
        return None, _LoopState()
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
    _check_fingerprint(saved["fingerprint"], fingerprint, resume_dir)
    ckpt.load_trainable_weights(model, resume_dir / ckpt.WEIGHTS_FILE)
    return resume_dir, _LoopState(**saved["loop"])


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


def _data_loader(train_data: Sequence, collate_fn: Callable, args: TrainingArguments) -> DataLoader:
    """Shuffled batches, reseeded each epoch with seed + epoch.

    Plain shuffling uses accelerate's seedable sampler; ``group_by_length`` uses our
    :class:`LengthGroupedSampler`, which accelerate's loader reseeds the same way.
    """
    if args.group_by_length:
        lengths = [example_length(example) for example in train_data]
        order = {"sampler": LengthGroupedSampler(lengths, args.batch_size, args.seed)}
    else:
        order = {"shuffle": True}
    return DataLoader(
        train_data,
        batch_size=args.batch_size,
        collate_fn=collate_fn,
        # the loader draws a base seed per epoch: from its own generator, never the global RNG
        generator=torch.Generator().manual_seed(args.seed),
        **order,
    )


def _default_loss(model: nn.Module, batch: dict) -> Tensor:
    loss = model(**batch).loss
    if loss is None:
        raise FlareError("the model returned no loss: put labels in the batch or pass loss_fn")
    return loss


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters only; no decay for 1-D ones (biases, norms, gates)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise FlareError("the model has no trainable parameters (requires_grad=True)")
    groups = [
        {"params": [p for p in trainable if p.dim() > 1], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.dim() <= 1], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def _fingerprint(args: TrainingArguments, num_examples: int, num_processes: int) -> dict:
    settings = {f.name: getattr(args, f.name) for f in fields(args) if f.name in _TRAJECTORY}
    return {**settings, "num_examples": num_examples, "num_processes": num_processes}


def _check_fingerprint(saved: dict, current: dict, where: Path) -> None:
    changed = differing_keys(saved, current)
    if changed:
        detail = ", ".join(
            f"{key}: {_lookup(saved, key)} -> {_lookup(current, key)}" for key in changed
        )
        raise FlareError(
            f"{where} belongs to a run with other settings ({detail}); use a new output_dir "
            "or the original settings"
        )


def _lookup(record: dict, dotted_key: str) -> str:
    """``record``'s value at ``a.b.c``, as repr, or ``<absent>``."""
    for part in dotted_key.split("."):
        if not isinstance(record, dict) or part not in record:
            return "<absent>"
        record = record[part]
    return repr(record)


def _hparams(args: TrainingArguments) -> dict:
    return {k: v for k, v in args.to_dict().items() if v is not None and k != "run_settings"}


def _finish(
    accelerator: Accelerator, model: nn.Module, output_dir: Path, result: TrainResult, fp: dict
) -> None:
    """Load the best weights, write ``final/`` and then the ``result.json`` marker."""
    if result.best_step is not None:
        best = ckpt.checkpoint_dir(output_dir, result.best_step) / ckpt.WEIGHTS_FILE
        ckpt.load_trainable_weights(model, best)
    weights = ckpt.gather_trainable_state(accelerator, model)
    if accelerator.is_main_process:
        ckpt.write_weights_dir(weights, output_dir / FINAL_DIR)
        write_json_atomically(
            output_dir / RESULT_FILE, {"result": asdict(result), "fingerprint": fp}
        )
    accelerator.wait_for_everyone()
    _info(
        accelerator,
        "finished at step %d; best metric %s at step %s; weights in %s",
        result.global_step,
        result.best_metric,
        result.best_step,
        output_dir / FINAL_DIR,
    )


def _finished_result(
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
    # finished weights serve any process count: only a resume must keep it
    independent = {k: v for k, v in fingerprint.items() if k != "num_processes"}
    saved_independent = {k: v for k, v in saved["fingerprint"].items() if k != "num_processes"}
    _check_fingerprint(saved_independent, independent, output_dir)
    final = output_dir / FINAL_DIR
    if (reason := ckpt.directory_damage(final, (ckpt.WEIGHTS_FILE,))) is not None:
        _distrust(accelerator, f"{final} is damaged: {reason}")
        return None
    ckpt.load_trainable_weights(model, final / ckpt.WEIGHTS_FILE)
    _info(accelerator, "%s already holds a finished run: loaded its weights", output_dir)
    return TrainResult(**saved["result"])


def _read_result(record: Path) -> tuple[dict | None, str]:
    """``(the saved result.json, "")``, or ``(None, what is wrong with it, naming it)``."""
    try:
        saved = read_json_object(record)
    except FlareError as err:
        return None, str(err)
    if not isinstance(saved.get("result"), dict) or not isinstance(saved.get("fingerprint"), dict):
        return None, f"{record} lacks the result or the fingerprint of a training run"
    try:
        TrainResult(**saved["result"])
    except TypeError as err:
        return None, f"{record} holds no valid training result ({err})"
    return saved, ""


def _distrust(accelerator: Accelerator, problem: str) -> None:
    """Warn that a finished run's records are not trusted because of ``problem``."""
    if accelerator.is_main_process:
        logger.warning("%s; finishing the run again from its newest usable checkpoint", problem)
