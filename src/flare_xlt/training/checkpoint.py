"""Training checkpoints: trainable weights, optimizer, scheduler, RNG and loop state.

A checkpoint is the directory ``<output_dir>/checkpoints/step-<N>/``::

    adapter.safetensors   trainable (requires_grad) parameters of the unwrapped model
    optimizer.pt          optimizer state (DDP / single process; FSDP and DeepSpeed: engine_state/)
    scheduler.pt          learning-rate scheduler (+ the fp16 grad scaler, when there is one)
    rng_state.pt          torch / numpy / python RNG states, one entry per process
    trainer_state.json    loop position, best metric, history, losses
    manifest.json         size and sha256 of every other file (written last)

The main process writes it into ``.tmp-step-<N>/``, flushes it to disk and renames it,
so a crash at any moment leaves either the complete checkpoint or none; a checkpoint is
removed the same way (renamed to a temp name first), so none is ever half-deleted. Only
under FSDP and DeepSpeed, whose optimizer state is sharded, does every process also
write its shard (through ``accelerator.save_state``) into ``engine_state/``.

What a crash cannot do, a full disk, a copy cut short or a bad sector can: before a
checkpoint is resumed, :func:`checkpoint_damage` checks every file against the manifest.
A checkpoint without a manifest was written by flare-xlt before checkpoints carried one
(or lost it) and counts as damaged too: the format changed, old ones are not resumed.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, gather_object
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

from flare_xlt.errors import FlareError
from flare_xlt.fileio import (
    publish_dir,
    read_json_object,
    remove_dir_atomically,
    sha256_file,
    write_dir_atomically,
)

CHECKPOINTS_DIR = "checkpoints"
WEIGHTS_FILE = "adapter.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pt"
STATE_FILE = "trainer_state.json"
ENGINE_DIR = "engine_state"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
# What resuming reads from every checkpoint (besides the optimizer state, see below).
CHECKPOINT_FILES = (WEIGHTS_FILE, SCHEDULER_FILE, RNG_FILE, STATE_FILE)
_STEP_DIR = re.compile(r"^step-(\d+)$")
# Engines that may shard parameters and optimizer state across processes.
SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED)


# ---------------------------------------------------------------- trainable weights
def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that are optimised (``requires_grad``), in module order."""
    return [name for name, param in model.named_parameters() if param.requires_grad]


def save_trainable_weights(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write a ``{name: tensor}`` dict of trainable weights as safetensors."""
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path))


def load_trainable_weights(model: nn.Module, path: str | Path) -> None:
    """Copy weights saved by the trainer into ``model``'s trainable parameters.

    The file must hold exactly the model's ``requires_grad`` parameters (same names
    and shapes): a mismatch means it belongs to another model or adapter setting.
    Under FSDP2 (sharded ``DTensor`` parameters) every process must call it.
    """
    path = Path(path)
    if not path.is_file():
        raise FlareError(f"no trainable-weights file at {path}")
    state = load_file(str(path))
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise FlareError(
            f"{path} does not match this model's trainable parameters "
            f"(missing: {missing[:3]}, unexpected: {unexpected[:3]}, ...)"
        )
    with torch.no_grad():
        for name, param in params.items():
            if param.shape != state[name].shape:
                raise FlareError(
                    f"{path}: {name} has shape {tuple(state[name].shape)}, "
                    f"the model expects {tuple(param.shape)}"
                )
            value = state[name].to(param.device, param.dtype)
            if isinstance(param.data, DTensor):  # FSDP2: every process keeps its own shard
                value = distribute_tensor(value, param.device_mesh, param.placements)
            param.copy_(value)


def gather_trainable_state(accelerator: Accelerator, model: nn.Module) -> dict[str, torch.Tensor]:
    """Full trainable weights of a prepared model (a collective: call on every process).

    FSDP and DeepSpeed ZeRO-3 shard parameters, so the full state is gathered with
    ``accelerator.get_state_dict`` and filtered; elsewhere every process holds them.
    """
    unwrapped = accelerator.unwrap_model(model)
    names = trainable_names(unwrapped)
    if accelerator.distributed_type in SHARDED:
        full = accelerator.get_state_dict(model)
        return {name: full[name] for name in names} if accelerator.is_main_process else {}
    params = dict(unwrapped.named_parameters())
    return {name: params[name].detach().cpu().clone() for name in names}


# ---------------------------------------------------------------- RNG
def capture_rng_state() -> dict:
    """This process's python, numpy, torch (and CUDA) RNG states, as tensors and plain values."""
    version, python_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, torch.tensor(python_state, dtype=torch.int64), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state.tolist()), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def isolated_rng() -> Iterator[None]:
    """Run a block (e.g. evaluation) without changing the RNG streams training draws from."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


# ---------------------------------------------------------------- directory layout
def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir, CHECKPOINTS_DIR, f"step-{step}")


def list_checkpoints(output_dir: str | Path) -> dict[int, Path]:
    """Published checkpoints ``{step: directory}``, oldest first (temp dirs are never listed).

    Published means renamed into place, not intact: see :func:`checkpoint_damage`.
    """
    root = Path(output_dir, CHECKPOINTS_DIR)
    found = {}
    if root.is_dir():
        for path in root.iterdir():
            match = _STEP_DIR.match(path.name)
            if match and path.is_dir():
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[max(checkpoints)] if checkpoints else None


def remove_stale_temp_dirs(output_dir: str | Path) -> None:
    """Delete half-written (or half-removed) checkpoints left by a run killed meanwhile."""
    root = Path(output_dir, CHECKPOINTS_DIR)
    if root.is_dir():
        for path in root.glob(".tmp-*"):
            shutil.rmtree(path)


def prune_checkpoints(output_dir: str | Path, keep: int, protect: int | None) -> None:
    """Keep the newest ``keep`` checkpoints plus the one at step ``protect`` (the best)."""
    checkpoints = list_checkpoints(output_dir)
    for step in list(checkpoints)[:-keep]:
        if step != protect:
            remove_dir_atomically(checkpoints[step])


def write_weights_dir(weights: dict[str, torch.Tensor], target: Path) -> None:
    """Publish ``target`` (``final/``) atomically: the trainable weights and their manifest."""

    def write(directory: Path) -> None:
        save_trainable_weights(weights, directory / WEIGHTS_FILE)
        write_manifest(directory)

    write_dir_atomically(target, write)


# ---------------------------------------------------------------- manifest
def write_manifest(directory: Path) -> None:
    """Record the size and sha256 of every file under ``directory`` in its manifest.json."""
    files = {
        path.relative_to(directory).as_posix(): {
            "size": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path != directory / MANIFEST_FILE
    }
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def checkpoint_damage(directory: Path) -> str | None:
    """Why the checkpoint ``directory`` cannot be resumed, in a few words; None if intact."""
    return directory_damage(directory, CHECKPOINT_FILES, optimizer_state=True)


def directory_damage(
    directory: Path, required: tuple[str, ...], optimizer_state: bool = False
) -> str | None:
    """Why ``directory`` cannot be trusted (None: every file its manifest lists matches).

    ``required`` files must be among those listed; with ``optimizer_state`` also
    ``optimizer.pt`` or (FSDP, DeepSpeed) the files of ``engine_state/``.
    """
    try:
        files = _manifest_files(directory)
    except FlareError as err:
        return str(err)
    needed = list(required)
    if optimizer_state and not any(name.startswith(f"{ENGINE_DIR}/") for name in files):
        needed.append(OPTIMIZER_FILE)
    unlisted = [name for name in needed if name not in files]
    if unlisted:
        return f"its {MANIFEST_FILE} does not list {', '.join(unlisted)}"
    for name, recorded in files.items():
        if (reason := _file_damage(directory / name, recorded)) is not None:
            return f"{name} {reason}"
    return None


def _manifest_files(directory: Path) -> dict[str, dict]:
    """The ``{relative path: {size, sha256}}`` of ``directory``'s manifest."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise FlareError(f"it has no {MANIFEST_FILE} (an older flare-xlt wrote none)")
    try:
        manifest = read_json_object(path)
    except FlareError:
        raise FlareError(f"its {MANIFEST_FILE} is not valid JSON") from None
    files = manifest.get("files")
    entries = files.values() if isinstance(files, dict) else [None]
    if manifest.get("format") != MANIFEST_FORMAT or not all(isinstance(e, dict) for e in entries):
        raise FlareError(f"its {MANIFEST_FILE} is not a format-{MANIFEST_FORMAT} manifest")
    return files


def _file_damage(path: Path, recorded: dict) -> str | None:
    """How ``path`` differs from its manifest entry (``"is missing"``, ...); None if it matches."""
    if not path.is_file():
        return "is missing"
    size = path.stat().st_size
    if size != recorded.get("size"):
        return f"has {size} bytes, its manifest says {recorded.get('size')}"
    if sha256_file(path) != recorded.get("sha256"):
        return "does not match its sha256 checksum"
    return None


# ---------------------------------------------------------------- save / load
def save_checkpoint(
    accelerator: Accelerator,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer_state: dict,
    directory: Path,
) -> None:
    """Write one checkpoint (a collective: every process calls it; the main process writes)."""
    weights = gather_trainable_state(accelerator, model)
    rng_states = gather_object([capture_rng_state()])
    temp = directory.with_name(f".tmp-{directory.name}")
    sharded = accelerator.distributed_type in SHARDED
    if sharded:  # every process writes its optimizer shard into the temp dir first
        if accelerator.is_main_process and temp.exists():
            shutil.rmtree(temp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(temp / ENGINE_DIR))
        accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if not sharded and temp.exists():
            shutil.rmtree(temp)
        temp.mkdir(parents=True, exist_ok=True)
        save_trainable_weights(weights, temp / WEIGHTS_FILE)
        if not sharded:
            torch.save(optimizer.state_dict(), temp / OPTIMIZER_FILE)
        scaler = accelerator.scaler.state_dict() if accelerator.scaler is not None else None
        torch.save({"scheduler": scheduler.state_dict(), "scaler": scaler}, temp / SCHEDULER_FILE)
        torch.save(rng_states, temp / RNG_FILE)
        (temp / STATE_FILE).write_text(json.dumps(trainer_state, indent=2) + "\n")
        write_manifest(temp)
        publish_dir(temp, directory)
    accelerator.wait_for_everyone()


def load_checkpoint(
    accelerator: Accelerator,
    directory: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    """Restore optimizer, scheduler (and grad scaler) of a prepared run from ``directory``.

    The trainable weights are loaded separately, before ``accelerator.prepare``, with
    :func:`load_trainable_weights`; RNG states last, with :func:`load_rng_state`.
    """
    if accelerator.distributed_type in SHARDED:
        accelerator.load_state(str(directory / ENGINE_DIR))
    else:
        optimizer.load_state_dict(torch.load(directory / OPTIMIZER_FILE, weights_only=True))
    saved = torch.load(directory / SCHEDULER_FILE, weights_only=True)
    scheduler.load_state_dict(saved["scheduler"])
    if accelerator.scaler is not None and saved["scaler"] is not None:
        accelerator.scaler.load_state_dict(saved["scaler"])


def load_rng_state(accelerator: Accelerator, directory: Path) -> None:
    """Restore this process's RNG states as they were when the checkpoint was written."""
    # one state per process: the fingerprint check has refused another process count
    states = torch.load(directory / RNG_FILE, weights_only=True)
    restore_rng_state(states[accelerator.process_index])
