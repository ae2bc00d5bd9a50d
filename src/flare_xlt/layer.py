"""The fused LoRA layers, and their injection into a model through peft.

This is the only module that imports peft. ``FlareLinear`` is a peft
``lora.Linear`` whose bottleneck fuses the target stream with the source
stream::

    y = W0 x_t + s * B(phi(A x_s, A x_t))

where ``x_s`` comes from the shared :class:`~flare_xlt.fusion_context.FusionContext`.
``FlareLinear4bit`` is the same on peft's LoRA layer for bitsandbytes 4-bit
(QLoRA) projections. With ``source=None`` in the config both are exactly peft's
LoRA (so plain-LoRA adapters merge as usual).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import Linear as LoraLinear
from peft.tuners.lora.layer import LoraLayer
from peft.utils import ModulesToSaveWrapper, load_peft_weights, set_peft_model_state_dict
from safetensors import SafetensorError
from torch import Tensor, nn

from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.fusion import build_fusion
from flare_xlt.fusion_context import FusionContext

ADAPTER_NAME = "default"


class FusedLora:
    """Fusion inside the bottleneck, mixed into a peft LoRA layer class (see below).

    Attributes set by :class:`~flare_xlt.model.FlareModel`:
        flare_context: the model's shared :class:`FusionContext`.
        flare_source_key: key of the source tensor this layer fuses.

    The layer either fuses (its fusion active, with the context's source or a zero
    source) or runs plain peft LoRA (no fusion here, adapter disabled or merged, as on
    the source pass: see :mod:`flare_xlt.sources`).
    """

    adapter_layer_names = (*LoraLayer.adapter_layer_names, "lora_fusion")
    clone_base_output = False  # peft clones a 4-bit layer's output before adding to it

    def __init__(self, base_layer, adapter_name, config, **kwargs):
        super().__init__(base_layer, adapter_name, config=config, **kwargs)
        self.flare_context: FusionContext | None = None
        self.flare_source_key = ""

    def update_layer(self, adapter_name, r, lora_alpha, config, **kwargs):
        if "lora_fusion" not in self._modules:  # first call comes from peft's __init__
            self.lora_fusion = nn.ModuleDict()
        super().update_layer(adapter_name, r, lora_alpha, config=config, **kwargs)
        fusion_name = getattr(config, "flare_fusion", None)
        if fusion_name is not None:
            weight = self.lora_A[adapter_name].weight
            fusion = build_fusion(fusion_name, r).to(weight.device)
            self.lora_fusion[adapter_name] = fusion

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        """``x``: ``[B, T, d_in]`` -> ``[B, T, d_out]``."""
        if self.disable_adapters or self.merged or not self.lora_fusion:
            return super().forward(x, *args, **kwargs)
        context = self.flare_context
        result = self.base_layer(x, *args, **kwargs)
        if self.clone_base_output:
            result = result.clone()
        source = context.source_for(self.flare_source_key) if context is not None else None
        for name in self.active_adapters:
            if name not in self.lora_fusion:
                continue
            down, up = self.lora_A[name], self.lora_B[name]
            dropout, scaling = self.lora_dropout[name], self.scaling[name]
            target = down(dropout(self._cast_input_dtype(x, down.weight.dtype)))
            source_low = None
            if source is not None:
                source_low = down(dropout(source.to(down.weight.dtype)))
            mask = context.source.mask if source is not None else None
            fused = self.lora_fusion[name](target, source_low, context.alignment, mask)
            result = result + up(fused) * scaling
        return result.to(x.dtype)


class FlareLinear(FusedLora, LoraLinear):
    """peft LoRA ``Linear`` with fusion inside the bottleneck."""


@functools.cache
def fused_4bit_class() -> type:
    """``FlareLinear4bit``: peft's LoRA layer on a bitsandbytes ``Linear4bit`` (QLoRA), with
    fusion. Built on first use, so bitsandbytes (the optional ``quantization`` extra) is
    imported only for models that have 4-bit layers."""
    from peft.tuners.lora.bnb import Linear4bit

    class FlareLinear4bit(FusedLora, Linear4bit):
        clone_base_output = True

    return FlareLinear4bit


def find_target_modules(model: nn.Module) -> list[str]:
    """The attention query/value projection names this model uses."""
    from flare_xlt.config import DEFAULT_TARGET_MODULES

    linear_names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if _is_linear(m)}
    for candidates in DEFAULT_TARGET_MODULES:
        if set(candidates) <= linear_names:
            return list(candidates)
    raise FlareError(
        f"could not find attention query/value projections in {type(model).__name__}; "
        "set FlareConfig.target_modules to the names of the linear layers to adapt"
    )


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear)


def lora_config_for(config: FlareConfig, model: nn.Module | None = None) -> LoraConfig:
    """The peft ``LoraConfig`` that builds :class:`FlareLinear` layers for ``config``."""
    lora_config = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        modules_to_save=config.modules_to_save,
        bias="none",
    )
    lora_config._register_custom_module(_custom_modules(model))
    # Read by FlareLinear.update_layer; peft keeps config objects, not copies of fields.
    lora_config.flare_fusion = config.fusion if config.is_fusion else None
    return lora_config


def _custom_modules(model: nn.Module | None) -> dict[type, type]:
    """Base layer type -> fused layer class; the first match wins, so 4-bit layers (a
    subclass of ``nn.Linear``) come first."""
    if not has_4bit_layers(model):
        return {nn.Linear: FlareLinear}
    import bitsandbytes as bnb

    return {bnb.nn.Linear4bit: fused_4bit_class(), nn.Linear: FlareLinear}


def has_4bit_layers(model: nn.Module | None) -> bool:
    """Whether ``model`` holds bitsandbytes layers (found without importing bitsandbytes)."""
    if model is None:
        return False
    return any(type(m).__module__.startswith("bitsandbytes") for m in model.modules())


def inject_flare(model: nn.Module, config: FlareConfig) -> PeftModel:
    """Wrap ``model`` (modified in place) with FLARE layers on ``config.target_modules``."""
    try:
        with warnings.catch_warnings():
            # peft reads transformers' deprecated `is_gradient_checkpointing`: not ours to fix
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            peft_model = get_peft_model(model, lora_config_for(config, model))
    except ValueError as err:
        raise FlareError(f"could not add FLARE adapters: {err}") from None
    layers = fused_layers(peft_model)
    if not layers:
        raise FlareError(f"no layer matched target_modules={config.target_modules}")
    keep_4bit_weights_trainable(peft_model)
    if config.is_fusion:
        encoder = _encoder_modules(model)
        for name, layer in layers.items():
            named = config.fusion_modules is None or any(
                _names(name, module) for module in config.fusion_modules
            )
            if not named or (encoder is not None and id(layer) not in encoder):
                del layer.lora_fusion[ADAPTER_NAME]  # plain LoRA in this projection
        if not any(layer.lora_fusion for layer in layers.values()):
            raise FlareError(f"no adapted layer matched fusion_modules={config.fusion_modules}")
    return peft_model


def _encoder_modules(model: nn.Module) -> set[int] | None:
    """Ids of the modules inside an encoder-decoder's encoder (where FLARE fuses), or None
    for a decoder-only or encoder-only model."""
    if not getattr(model.config, "is_encoder_decoder", False):
        return None
    return {id(module) for module in model.get_encoder().modules()}


def keep_4bit_weights_trainable(model: nn.Module) -> None:
    """Turn off bitsandbytes' CPU inference repacking of 4-bit weights in ``model``.

    On the CPU, ``bnb.nn.Linear4bit`` repacks its weights in place the first time it runs
    in eval mode without gradient (the source pass, a validation round); the repacked
    layout has no backward, so gradients through every later training step were silently
    lost (tested). Training and inference then share the layout that has one.
    """
    if not has_4bit_layers(model):
        return
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _names(layer_name: str, module: str) -> bool:
    """Whether ``module`` names the layer, as peft matches target_modules (by dotted suffix)."""
    return layer_name == module or layer_name.endswith("." + module)


def fused_layers(model: nn.Module) -> dict[str, FusedLora]:
    """Name -> layer for every fused layer (:class:`FusedLora`) in ``model``, in module order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, FusedLora)}


def saved_module_wrappers(module: nn.Module) -> list[nn.Module]:
    """peft's wrappers of the ``modules_to_save`` inside ``module``."""
    return [m for m in module.modules() if isinstance(m, ModulesToSaveWrapper)]


@contextmanager
def adapters_disabled(layers: list[nn.Module]) -> Iterator[None]:
    """Run with the adapters of ``layers`` switched off: fused layers run their frozen base
    projection, and peft's wrappers of ``modules_to_save`` (e.g. trained embeddings) their
    original weights, not the adapter's trained copies (the source pass runs the frozen
    model). ``layers`` are :class:`FusedLora` layers and such wrappers (see
    :func:`fused_layers`, :func:`saved_module_wrappers`); ``requires_grad`` of their
    parameters is as the caller had set it afterwards."""
    switched = [layer for layer in layers if not layer.disable_adapters]
    # peft's enable_adapters also sets requires_grad: keep what the caller had set
    trainable = {param: param.requires_grad for layer in switched for param in layer.parameters()}
    for layer in switched:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in switched:
            layer.enable_adapters(True)
        for param, requires_grad in trainable.items():
            param.requires_grad_(requires_grad)


def save_adapter(peft_model: PeftModel, directory: str | Path) -> None:
    """Write peft's ``adapter_config.json`` and ``adapter_model.safetensors``."""
    peft_model.save_pretrained(str(directory))


def load_adapter(peft_model: PeftModel, directory: str | Path) -> None:
    """Load saved adapter weights; a mismatch in names or shapes is a clear error."""
    try:
        weights = load_peft_weights(str(directory), device="cpu")
    except (OSError, ValueError, SafetensorError) as err:
        raise FlareError(f"could not read adapter weights in {directory}: {err}") from None
    mismatch = f"adapter in {directory} does not fit this base model (other architecture or size)"
    try:
        result = set_peft_model_state_dict(peft_model, weights, adapter_name=ADAPTER_NAME)
    except RuntimeError as err:
        raise FlareError(f"{mismatch}: {str(err).strip().splitlines()[-1].strip()}") from None
    missing = [k for k in result.missing_keys if "lora_" in k or "modules_to_save" in k]
    if result.unexpected_keys or missing:
        example = (list(result.unexpected_keys) or missing)[0]
        raise FlareError(
            f"{mismatch}: {len(result.unexpected_keys)} unexpected and {len(missing)} missing "
            f"adapter weights, e.g. {example}"
        )
