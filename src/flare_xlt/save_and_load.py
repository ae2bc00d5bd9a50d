"""Writing a :class:`~flare_xlt.model.FlareModel`'s adapter to a directory and loading it.

A saved adapter is peft's ``adapter_config.json`` and ``adapter_model.safetensors``,
``flare_config.json`` (the :class:`~flare_xlt.config.FlareConfig` with the base model's
identity and, for FLARE-MT, the latent encoder's name) and, for FLARE-MT, the
trained projection of the latent encoder (:data:`PROJECTION_FILE`).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from flare_xlt.base_identity import check_same_base, describe_base
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.latent import LatentEncoder
from flare_xlt.layer import load_adapter, save_adapter

if TYPE_CHECKING:
    from flare_xlt.model import FlareModel

PROJECTION_FILE = "latent_projection.safetensors"


def save_pretrained(model: FlareModel, directory: str | Path) -> None:
    """Write peft adapter files, ``flare_config.json`` and, for FLARE-MT, the projection."""
    try:
        _write(model, Path(directory))
    except (OSError, SafetensorError) as err:  # a file in the way, read-only, disk full
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise FlareError(f"could not save the adapter to {directory}: {reason}") from None


def _write(model: FlareModel, directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    save_adapter(model.peft_model, directory)
    config = model.flare_config
    extra = {"base_model": describe_base(model.hf_model, config.modules_to_save)}
    if model.latent_encoder is not None:
        extra["latent_encoder"] = {"name_or_path": model.latent_encoder.name_or_path}
        projection = model.latent_encoder.projection.state_dict()
        save_file(
            {k: v.contiguous() for k, v in projection.items()},
            str(Path(directory, PROJECTION_FILE)),
        )
    config.save(directory, **extra)


def from_pretrained(
    cls: type[FlareModel],
    base_model: nn.Module,
    directory: str | Path,
    latent_encoder: LatentEncoder | None = None,
    allow_different_base: bool = False,
) -> FlareModel:
    """Load adapters saved by :func:`save_pretrained` onto ``base_model`` (see
    :meth:`FlareModel.from_pretrained <flare_xlt.model.FlareModel.from_pretrained>`)."""
    config, meta = FlareConfig.load_file(directory)
    saved_base = meta.get("base_model", {})
    check_same_base(base_model, saved_base, directory, allow_different_base, config.modules_to_save)
    if config.source != "latent" and latent_encoder is not None:
        raise FlareError(
            f"{directory} is not a FLARE-MT adapter (source={config.source!r}): "
            "load it without latent_encoder"
        )
    if config.source == "latent" and latent_encoder is None:
        name = meta.get("latent_encoder", {}).get("name_or_path")
        if name is None:
            raise FlareError(f"{directory} is a FLARE-MT adapter: pass latent_encoder=...")
        latent_encoder = LatentEncoder.from_pretrained(name, _hidden_size(base_model))
    model = cls.from_base(base_model, config, latent_encoder)
    load_adapter(model.peft_model, directory)
    if latent_encoder is not None:
        projection = Path(directory, PROJECTION_FILE)
        if not projection.is_file():
            raise FlareError(f"{projection} is missing: the FLARE-MT adapter is incomplete")
        latent_encoder.projection.load_state_dict(load_file(str(projection)))
    return model


def _hidden_size(model: nn.Module) -> int:
    config = model.config
    return getattr(config, "hidden_size", None) or config.get_text_config().hidden_size
