"""Which base model an adapter belongs to: recorded when it is saved, checked when it is loaded.

An adapter trained on one base model computes nonsense on another of the same shape
(another checkpoint, a merged stage-1 model, another vocabulary), so ``flare_config.json``
records the base's name, the settings of its config that shape the network, and a
fingerprint of its weights. Loading onto a base that differs in any of them is refused
with a line naming what differs, unless the caller allows it.
"""

from __future__ import annotations

import hashlib
import re

import torch
from torch import nn

from flare_xlt.errors import FlareError
from flare_xlt.records import differing_keys

# Config entries that do not change what the network computes (runtime options, names).
_RUNTIME_KEYS = {
    "architectures",
    "dtype",
    "torch_dtype",
    "transformers_version",
    "use_cache",
    "return_dict",
    "output_attentions",
    "output_hidden_states",
    "id2label",
    "label2id",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "quantization_config",
    "name_or_path",
    "problem_type",
}
# peft's names for the frozen copy of a wrapped module: ``q_proj.base_layer.weight`` is the
# plain model's ``q_proj.weight``; adapter parameters are not part of the base.
_WRAPPER_PARTS = re.compile(r"\.(base_layer|original_module)(?=\.)")
_ADAPTER_PARTS = ("lora_", ".modules_to_save.")
_QUANTIZED = (torch.uint8, torch.int8)


def describe_base(model: nn.Module, trained_modules: list[str] | None = None) -> dict:
    """JSON-native identity of ``model`` (a plain HF model, or one with adapters injected).

    ``trained_modules`` (the adapter's ``modules_to_save``, e.g. a new classification
    head) are left out of the weights: the adapter carries its own trained copy, and the
    base's are a random initialisation that differs at every load.
    """
    skip = tuple(trained_modules or ())
    return {
        **model_kind(model),
        "config": network_settings(model.config),
        "weights": weights_fingerprint(model, skip=skip),
        "weights_fp16": weights_fingerprint(model, skip=skip, through=torch.float16),
    }


def model_kind(model: nn.Module) -> dict:
    """``model_type``, ``hidden_size``, ``num_hidden_layers`` and ``name_or_path`` of ``model``."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return {
        "model_type": config.model_type,
        "hidden_size": getattr(text, "hidden_size", None),
        "num_hidden_layers": getattr(text, "num_hidden_layers", None),
        "name_or_path": getattr(config, "_name_or_path", None),
    }


def network_settings(config) -> dict:
    """The config's entries that shape the network (sizes, vocabulary, norms, positions)."""
    settings = {
        key: value
        for key, value in config.to_dict().items()
        if not key.startswith("_") and key not in _RUNTIME_KEYS
    }
    return _json_native(settings)


def weights_fingerprint(
    model: nn.Module,
    samples: int = 16,
    skip: tuple[str, ...] = (),
    through: torch.dtype | None = None,
) -> str:
    """SHA-256 over each base parameter's name, shape and ``samples`` evenly spaced values.

    Cheap for a billion weights, changed by any merge or fine-tuning of a matrix. Values are
    hashed at bfloat16 precision, so one checkpoint loaded in fp32 or bf16 gives one
    fingerprint; ``through=torch.float16`` rounds them to fp16 first, which is what an fp16
    copy of the checkpoint holds (fp32 -> fp16 -> bf16 is not always fp32 -> bf16, so
    both are recorded). Parameters of the modules named in ``skip`` are left out. Adapter
    parameters (LoRA, trained copies of ``modules_to_save``) are left
    out and peft's wrapper names are read as the plain model's, so the fingerprint of a
    base is the same before and after adapters are injected. Quantized (integer-stored)
    weights are left out too: bitsandbytes repacks them in place on the CPU, and one
    checkpoint may be loaded in 4 bits or not; its embeddings and norms still identify it.
    """
    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        if any(part in name for part in _ADAPTER_PARTS) or param.dtype in _QUANTIZED:
            continue
        plain_name = _WRAPPER_PARTS.sub("", name)
        if any(_in_module(plain_name, module) for module in skip):
            continue
        flat = param.detach().flatten()
        picked = flat[:: max(1, flat.numel() // samples)][:samples]
        if through is not None:
            picked = picked.to(through)
        digest.update(f"{plain_name}{tuple(param.shape)}".encode())
        digest.update(picked.to(torch.bfloat16).float().cpu().numpy().tobytes())
    return digest.hexdigest()


def check_same_base(
    model: nn.Module,
    saved: dict,
    directory,
    allow_different: bool,
    trained_modules: list[str] | None = None,
) -> None:
    """Refuse ``model`` when it is not the base described by ``saved`` (see :func:`describe_base`).

    Architecture and size mismatches are always refused (the weights would not fit);
    other config settings and the weights only unless ``allow_different``. Records
    saved before a key existed are checked on the keys they have, and config entries
    that only one side has (another transformers release may add or rename some) are
    not compared.
    """
    current = describe_base(model, trained_modules)
    for key in ("model_type", "hidden_size", "num_hidden_layers"):
        if saved.get(key) is not None and saved[key] != current[key]:
            raise FlareError(
                f"adapter in {directory} was trained on a base model with {key}={saved[key]!r}, "
                f"but this base model has {key}={current[key]!r}"
            )
    if allow_different:
        return
    differ = []
    if isinstance(saved.get("config"), dict):
        shared = saved["config"].keys() & current["config"].keys()
        old = {key: saved["config"][key] for key in shared}
        new = {key: current["config"][key] for key in shared}
        differ += [f"config.{key}" for key in differing_keys(old, new)]
    if saved.get("weights") is not None and not _same_weights(saved, current):
        differ.append("weights")
    if differ:
        names = f"{saved.get('name_or_path')!r} -> {current['name_or_path']!r}"
        raise FlareError(
            f"adapter in {directory} was trained on another base model ({names}; different "
            f"{', '.join(differ[:5])}); load the base it was trained on, or pass "
            "allow_different_base=True"
        )


def _same_weights(saved: dict, current: dict) -> bool:
    """Whether the fingerprints match at bf16 precision, or through fp16 (an fp16 copy)."""
    if saved["weights"] == current["weights"]:
        return True
    return saved.get("weights_fp16") is not None and (
        saved["weights_fp16"] in (current["weights"], current["weights_fp16"])
    )


def _in_module(parameter: str, module: str) -> bool:
    """Whether ``parameter`` (a dotted name) belongs to the module called ``module``."""
    return parameter.startswith(module + ".") or f".{module}." in parameter


def _json_native(value):
    """``value`` with tuples as lists and other non-JSON leaves as their ``repr``."""
    if isinstance(value, dict):
        return {str(k): _json_native(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_native(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
