"""Loading a translation model: a built-in name, a local directory or a hub id.

:func:`load_pretrained` loads the model and tokenizer for either backend and says
which revision they are (a hub commit, or a fingerprint of the local files, so a
rewritten model is a cache miss). :func:`detect_backend` tells from a model's
config whether it is a seq2seq MT model or a decoder-only LM.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoTokenizer

from flare_xlt.errors import FlareError, ModelUnavailableError
from flare_xlt.models.cache import read_manifest
from flare_xlt.models.hub import hub_options
from flare_xlt.models.loading import is_decoder_config
from flare_xlt.models.prepare import prepare_model
from flare_xlt.models.registry import BUILTIN_MODELS

BACKENDS = ("seq2seq", "llm")
"""``seq2seq``: NLLB, M2M100, Marian; ``llm``: a decoder-only LM asked with a prompt."""


def model_source(name_or_path: str) -> tuple[str, bool]:
    """``(what from_pretrained reads, whether it is local)``; built-ins are converted once."""
    if name_or_path in BUILTIN_MODELS:
        return str(prepare_model(name_or_path, progress=True, verify=False)), True
    return name_or_path, Path(name_or_path).is_dir()


def detect_backend(name_or_path: str, revision: str | None = None) -> str:
    """``"llm"`` for a decoder-only LM, ``"seq2seq"`` for an encoder-decoder, from its config.

    Raises:
        ModelUnavailableError: the config cannot be read (offline, typo, missing files).
        FlareError: the model is neither (an encoder such as BERT cannot translate).
    """
    builtin = BUILTIN_MODELS.get(name_or_path)
    if builtin is not None and builtin.kind != "decoder":
        raise FlareError(f"built-in model {name_or_path!r} is an encoder; it cannot translate")
    if builtin is not None:
        return "llm"
    source, local = model_source(name_or_path)
    options = {} if local else {**hub_options(), "revision": revision}
    try:
        config = AutoConfig.from_pretrained(source, **options)
    except (OSError, ValueError) as err:
        raise _unavailable(name_or_path, err) from err
    if is_decoder_config(config):
        return "llm"
    if config.is_encoder_decoder:
        return "seq2seq"
    raise FlareError(
        f"{name_or_path!r} ({config.model_type}) is neither a seq2seq MT model nor a "
        "decoder-only LM, so it cannot translate"
    )


def load_pretrained(
    name_or_path: str,
    model_class: Any,
    *,
    revision: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> tuple[Any, Any, str | None]:
    """``(model, tokenizer, resolved revision)`` with ``model_class`` (an ``AutoModelFor...``).

    The revision of a built-in model is :func:`builtin_fingerprint`, of a local directory
    :func:`local_fingerprint` (the hub ignores ``revision`` for a folder), of a hub id the
    commit a branch or tag resolved to, so a moved branch is a cache miss.

    Raises:
        ModelUnavailableError: the model cannot be loaded (offline, typo, missing files,
            missing tokenizer dependency, a model of another kind), in one line.
    """
    if device is not None:
        device = available_device(device)
    source, local = model_source(name_or_path)
    kwargs: dict[str, Any] = {"revision": revision}
    if not local:  # a hub id: fail at once when it cannot be reached
        kwargs.update(hub_options())
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        if dtype is not None:
            kwargs["dtype"] = dtype
        model = model_class.from_pretrained(source, **kwargs)
    except (OSError, ValueError, ImportError, SafetensorError) as err:
        raise _unavailable(name_or_path, err) from err
    if device is not None:
        model = model.to(device)
    if name_or_path in BUILTIN_MODELS:
        resolved = builtin_fingerprint(Path(source))
    elif local:
        resolved = local_fingerprint(Path(source))
    else:
        resolved = getattr(model.config, "_commit_hash", None) or revision
    return model, tokenizer, resolved


def _unavailable(name_or_path: str, err: Exception) -> ModelUnavailableError:
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return ModelUnavailableError(f"cannot load translation model {name_or_path!r}: {reason}")


def available_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or a one-line error if this machine lacks it."""
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise FlareError(f"unknown device {device!r}: {err}") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise FlareError(
            f"device {device} is not available: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); use --device cpu"
        )
    return device


def builtin_fingerprint(directory: Path) -> str:
    """A revision for a converted built-in model: hash of its manifest's packages and files.

    The same on every machine that converted the same package versions (a translation
    cache can be shared), and new when a package update changes the converted weights.
    """
    manifest = read_manifest(directory)
    if manifest is None:  # not a finished conversion: fall back to the files themselves
        return local_fingerprint(directory)
    content = {"packages": manifest.packages, "files": asdict(manifest)["files"]}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "builtin-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def local_fingerprint(directory: Path) -> str:
    """A revision for a local model directory: hash of its files' names, sizes and mtimes.

    Cheap (no weights are read) and changes whenever a file is rewritten; a
    copied directory gets a new fingerprint, which only costs a cache miss.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(
            f"{path.relative_to(directory)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    return "local-" + digest.hexdigest()[:16]
