"""A generic, resumable training loop on ``accelerate`` (single process, DDP, FSDP, DeepSpeed).

``train(model, data, collate_fn, TrainingArguments(...))`` optimises the model's
``requires_grad`` parameters with AdamW and a linear warmup schedule. Distribution
comes from how the script is launched (``accelerate launch --config_file ...`` or
``torchrun``), not from this code.

Runs are restartable: checkpoints land in ``output_dir/checkpoints/step-<N>/`` (see
:mod:`flare_xlt.training.checkpoint`), and calling ``train`` again with the same
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
from flare_xlt.training import checkpoint as ckpt
from flare_xlt.training.args import TrainingArguments
from flare_xlt.training.distributed import info_on_main
from flare_xlt.training.resume import (
    LoopState,
    TrainResult,
    checkpoint_record,
    finish,
    finished_result,
    resume_point,
    run_fingerprint,
)
from flare_xlt.training.sampling import LengthGroupedSampler, example_length

logger = logging.getLogger(__name__)


class TrainingDiverged(FlareError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


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
    fingerprint = run_fingerprint(args, len(train_data), accelerator.num_processes)
    finished = finished_result(accelerator, model, args.output_dir, fingerprint)
    if finished is not None:
        return finished
    resume_dir, state = resume_point(accelerator, model, args, fingerprint)
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
        info_on_main(accelerator, "resuming from %s (step %d)", resume_dir, resumed_from)
    if is_tensorboard_available():
        accelerator.init_trackers("tensorboard", config=_hparams(args))
    info_on_main(
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
    finish(accelerator, model, args.output_dir, result, fingerprint)
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

    def run(self, state: LoopState, steps_per_epoch: int, total_steps: int) -> None:
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

    def _micro_step(self, batch: dict, state: LoopState) -> bool:
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

    def _diverged_message(self, loss: float, state: LoopState) -> str:
        args = self.args
        clip = " or set max_grad_norm (e.g. 1.0)" if args.max_grad_norm is None else ""
        last_good = ckpt.latest_checkpoint(args.output_dir)
        kept = f"the last good one is {last_good}" if last_good else "none was written before"
        return (
            f"training diverged: the loss is {loss} at step {state.global_step + 1} "
            f"(epoch {state.epoch}); no checkpoint was written for it, {kept}. Lower the "
            f"learning_rate (now {args.learning_rate:g}){clip} and rerun in a new output_dir"
        )

    def _log(self, state: LoopState, steps_per_epoch: int) -> None:
        if state.global_step % self.args.log_every_steps:
            return
        loss = state.window_loss / state.window_batches
        state.losses.append(loss)
        state.window_loss, state.window_batches = 0.0, 0
        lr = self.step_lr
        info_on_main(
            self.accelerator,
            "step %d | epoch %.2f | loss %.4f | lr %.3e",
            state.global_step,
            state.global_step / steps_per_epoch,
            loss,
            lr,
        )
        self.accelerator.log({"train/loss": loss, "train/lr": lr}, step=state.global_step)

    def _maybe_evaluate(self, state: LoopState, epoch_done: bool, done: bool) -> bool:
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
        info_on_main(
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

    def _save(self, state: LoopState) -> None:
        accelerator, args = self.accelerator, self.args
        trainer_state = checkpoint_record(self.fingerprint, state, accelerator.num_processes)
        directory = ckpt.checkpoint_dir(args.output_dir, state.global_step)
        ckpt.save_checkpoint(
            accelerator, self.model, self.optimizer, self.scheduler, trainer_state, directory
        )
        if accelerator.is_main_process:
            ckpt.prune_checkpoints(args.output_dir, args.keep_checkpoints, state.best_step)
        accelerator.wait_for_everyone()


# ---------------------------------------------------------------- helpers
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


def _hparams(args: TrainingArguments) -> dict:
    return {k: v for k, v in args.to_dict().items() if v is not None and k != "run_settings"}
