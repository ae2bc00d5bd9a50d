"""Where a FLARE adapter's source states come from: one strategy per ``FlareConfig.source``.

* :class:`ModelSource` (``source="model"``, FLARE): the English text through the frozen
  transformer body of the same model, adapter disabled. Each fused layer reads its own
  projection's input (``projection_input``) or its layer's residual-stream hidden state
  (``hidden_state``) on that pass, of the layer ``source_layer_offset`` further up.
* :class:`LatentSource` (``source="latent"``, FLARE-MT): the target text through a
  frozen MT/latent encoder (:class:`~flare_xlt.latent.LatentEncoder`); its trainable
  projection of the last hidden states feeds every fused layer.

A strategy names its input arguments and the model that produced their token ids (for
the vocabulary and length checks), encodes them (always on the packed input, see
:func:`~flare_xlt.alignment.pack_real_tokens_first`, from a
:class:`~flare_xlt.cache.SourceCache` when it holds them), describes what the cached
states depend on, and gives each fused layer the key of the source tensor it fuses.
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace

import torch
from torch import Tensor, nn

from flare_xlt.alignment import pack_real_tokens_first
from flare_xlt.base_identity import model_kind, weights_fingerprint
from flare_xlt.cache import SourceCache
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.fusion_context import SourceBatch
from flare_xlt.inputs import check_ids, check_length, check_tokens
from flare_xlt.latent import LatentEncoder
from flare_xlt.layer import adapters_disabled, fused_layers, saved_module_wrappers

LATENT_KEY = "latent"
# What a source cache's producer record names of the model (its weights are fingerprinted).


def hidden_state_key(layer_index: int) -> str:
    """Source key of the residual-stream hidden state entering layer ``layer_index``."""
    return f"hidden_state.{layer_index}"


class Source(ABC):
    """The source side of one adapter kind; subclasses fill in the kind-specific parts.

    Attributes:
        ids_name, mask_name: the ``FlareModel.forward`` arguments that carry its input.
        other_ids_name: the other kind's ids argument, refused when given.
        reentrant_checkpointing_error: why re-entrant gradient checkpointing cannot train
            this source, or None where it can.
    """

    ids_name: str
    mask_name: str
    other_ids_name: str
    reentrant_checkpointing_error: str | None = None

    def __init__(self, config: FlareConfig):
        self.config = config
        self._description: dict | None = None

    @property
    @abstractmethod
    def producer(self) -> nn.Module:
        """The model whose tokenizer made the ids (vocabulary and position table)."""

    @abstractmethod
    def run(self, ids: Tensor, mask: Tensor) -> SourceBatch:
        """Frozen states (no graph) of packed ``[B, S]`` ids and mask: ``[B, S, D]`` per key."""

    @abstractmethod
    def layer_key(self, layer_name: str) -> str:
        """The key of the source tensor the fused layer ``layer_name`` reads."""

    @abstractmethod
    def describe_producer(self) -> dict:
        """What produced the states beyond the config (JSON-native), with ``"weights"``."""

    def trainable(self, batch: SourceBatch) -> SourceBatch:
        """The trainable step after the frozen states (and the cache): none here."""
        return batch

    def check_checkpointing(self, options: dict) -> None:
        """FlareError where the gradient checkpointing ``options`` cannot train this source."""
        if options.get("use_reentrant") and self.reentrant_checkpointing_error:
            raise FlareError(self.reentrant_checkpointing_error)

    def batch(
        self,
        inputs: Mapping[str, Tensor | None],
        batch_size: int,
        cache: SourceCache | None,
        cache_keys: Sequence[str] | None,
        target_only: bool,
        training: bool,
    ) -> SourceBatch | None:
        """The step's source, after validation, caching and source dropout.

        Args:
            inputs: the forward's source arguments by name (``[B, S]`` ids and masks).
            batch_size: ``B`` of the target batch.
            cache, cache_keys: the model's source cache and one id per example (``B``).
            target_only: run without a source on purpose.
            training: whether source dropout applies.

        Returns:
            States ``[B, S', D]`` per source key (``[B, 1, D]`` when pooled) and their
            mask, or None for no source.
        """
        ids, mask = inputs.get(self.ids_name), inputs.get(self.mask_name)
        if inputs.get(self.other_ids_name) is not None:
            raise FlareError(
                f"{self.other_ids_name} was given, but this adapter has "
                f"source={self.config.source!r}"
            )
        if target_only:
            return None
        dropout = self.config.source_dropout if training else 0.0
        if ids is None:
            if dropout > 0:
                return None
            raise FlareError(
                f"{self.ids_name} is required for a source={self.config.source!r} adapter; "
                "pass target_only=True to run without a source on purpose"
            )
        mask = self._checked(ids, mask, batch_size)
        if cache_keys is not None and len(cache_keys) != batch_size:
            raise FlareError(
                f"cache_keys has {len(cache_keys)} entries for a batch of {batch_size}"
            )
        batch = self.encode(ids, mask, cache, cache_keys)
        if self.config.alignment == "pooled":
            batch = batch.pooled()
        batch = self.trainable(batch)
        if dropout > 0:
            batch = batch.withhold(torch.rand(batch_size, device=ids.device) < dropout)
        return batch

    def _checked(self, ids: Tensor, mask: Tensor | None, batch_size: int) -> Tensor:
        """Check ``[B, S]`` ids and mask (FlareError naming them); returns the mask."""
        check_ids(self.ids_name, ids, mask, self.mask_name, batch_size)
        if ids.shape[1] == 0:
            raise FlareError(
                f"{self.ids_name} has no tokens (shape {tuple(ids.shape)}); pass "
                "target_only=True to run without a source on purpose"
            )
        if mask is None:
            mask = torch.ones_like(ids)
        check_tokens(self.ids_name, ids[mask.bool()], self.producer)
        check_length(self.ids_name, int(mask.bool().sum(dim=-1).max()), self.producer)
        return mask

    def encode(
        self,
        ids: Tensor,
        mask: Tensor,
        cache: SourceCache | None = None,
        cache_keys: Sequence[str] | None = None,
    ) -> SourceBatch:
        """Frozen source states (before any trainable step) of ``[B, S]`` ids and mask.

        The pass runs on the packed input (real tokens first), so its states do not
        depend on the padding; they come from ``cache`` when it holds all ``cache_keys``
        (``B``) and are stored there otherwise. ``position`` alignment keeps the mask as
        given beside them (``padded_mask``).

        Returns:
            States ``[B, S', D]`` per source key and the packed mask ``[B, S']``.
        """
        packed_ids, packed_mask = pack_real_tokens_first(ids, mask)
        if cache is None or cache_keys is None:
            batch = self.run(packed_ids, packed_mask)
        else:
            batch = self._cached_or_run(packed_ids, packed_mask, cache, cache_keys)
        if self.config.alignment == "position":  # pairs the raw padded positions
            batch = replace(batch, padded_mask=mask)
        return batch

    def _cached_or_run(
        self, ids: Tensor, mask: Tensor, cache: SourceCache, cache_keys: Sequence[str]
    ) -> SourceBatch:
        """States of packed ``[B, S]`` ids, loaded from or stored in ``cache``."""
        cache.bind(self.description())
        tokens = [row[row_mask.bool()] for row, row_mask in zip(ids, mask, strict=True)]
        dtype = next(self.producer.parameters()).dtype  # what the states are computed in
        cached = cache.load(cache_keys, tokens, dtype, ids.device)
        if cached is not None:
            return cached
        batch = self.run(ids, mask)
        cache.store(cache_keys, batch, tokens)
        return batch

    def description(self) -> dict:
        """What the cached source states depend on (JSON-native), for ``SourceCache.bind``.

        The frozen weights are fingerprinted once, on first use: a merged stage-1 model
        keeps its hub name, so the name alone cannot tell it from the original.
        """
        if self._description is None:
            config = self.config
            self._description = {
                "source": config.source,
                "source_representation": config.source_representation,
                "source_layer_offset": config.source_layer_offset,
                "target_modules": sorted(config.target_modules or []),
                "fusion_modules": sorted(config.fusion_modules or config.target_modules or []),
                **self.describe_producer(),
            }
        return self._description


class ModelSource(Source):
    """FLARE: the English text through the frozen body of the same model, adapter disabled.

    Args:
        config: the adapter's settings.
        peft_model: the model with the FLARE layers injected.
    """

    ids_name = "source_input_ids"
    mask_name = "source_attention_mask"
    other_ids_name = "latent_input_ids"

    def __init__(self, config: FlareConfig, peft_model: nn.Module):
        super().__init__(config)
        self.peft_model = peft_model
        self.model = peft_model.get_base_model()
        self.body = source_body(self.model)
        accepts_cache = "use_cache" in inspect.signature(self.body.forward).parameters
        self._options = {"use_cache": False} if accepts_cache else {}
        in_body = {id(module) for module in self.body.modules()}
        layers = {n: m for n, m in fused_layers(peft_model).items() if id(m) in in_body}
        # fixed once adapters exist: what the pass switches off, and whose inputs it keeps
        self._adapted = [*layers.values(), *saved_module_wrappers(self.body)]
        self._fusing = {name: layer for name, layer in layers.items() if layer.lora_fusion}

    @property
    def producer(self) -> nn.Module:
        return self.model

    @torch.no_grad()
    def run(self, ids: Tensor, mask: Tensor) -> SourceBatch:
        """The English ``[B, S]`` through the transformer body, adapter off (trained copies
        of ``modules_to_save`` too), eval mode, no graph: ``[B, S, D]`` per key."""
        kwargs = {"input_ids": ids, "attention_mask": mask, **self._options}
        was_training = self.peft_model.training
        if was_training:
            self.peft_model.eval()  # deterministic source: no dropout
        try:
            with adapters_disabled(self._adapted):
                if self.config.source_representation == "hidden_state":
                    hidden = self.body(**kwargs, output_hidden_states=True).hidden_states
                    states = {hidden_state_key(i): h for i, h in enumerate(hidden)}
                else:
                    with recorded_inputs(self._fusing) as states:
                        self.body(**kwargs)
        finally:
            if was_training:
                self.peft_model.train()
        return SourceBatch(states, mask)

    def layer_key(self, layer_name: str) -> str:
        offset = self.config.source_layer_offset
        if self.config.source_representation == "hidden_state":
            return hidden_state_key(_layer_index(layer_name) + offset)
        return _shift_layer(layer_name, offset)

    def describe_producer(self) -> dict:
        # the kind and the fp32 fingerprint only (not describe_base, which also hashes in fp16)
        return {"model": model_kind(self.model), "weights": weights_fingerprint(self.model)}


class LatentSource(Source):
    """FLARE-MT: the target text through a frozen latent encoder, then its projection.

    Args:
        config: the adapter's settings.
        encoder: the latent encoder (frozen) with its trainable projection.
    """

    ids_name = "latent_input_ids"
    mask_name = "latent_attention_mask"
    other_ids_name = "source_input_ids"
    reentrant_checkpointing_error = (
        "FLARE-MT needs use_reentrant=False: its one latent source feeds every layer, "
        "and re-entrant checkpointing back-propagates through it once per layer"
    )

    def __init__(self, config: FlareConfig, encoder: LatentEncoder):
        super().__init__(config)
        self.encoder = encoder

    @property
    def producer(self) -> nn.Module:
        return self.encoder.encoder

    def run(self, ids: Tensor, mask: Tensor) -> SourceBatch:
        """``[B, S]`` -> the encoder's last hidden states ``[B, S, d_enc]``."""
        return SourceBatch({LATENT_KEY: self.encoder.encode(ids, mask)}, mask)

    def layer_key(self, layer_name: str) -> str:
        return LATENT_KEY  # one source for every layer

    def describe_producer(self) -> dict:
        return {
            "latent_encoder": self.encoder.name_or_path,
            "weights": weights_fingerprint(self.encoder.encoder),
        }

    def trainable(self, batch: SourceBatch) -> SourceBatch:
        """The projected latent translation: ``[B, S, d_enc]`` -> ``[B, S, d]``."""
        return replace(batch, states={LATENT_KEY: self.encoder.project(batch.states[LATENT_KEY])})


def build_source(
    config: FlareConfig, peft_model: nn.Module, latent_encoder: LatentEncoder | None
) -> Source | None:
    """The strategy for ``config.source``; None for plain LoRA (``source=None``)."""
    check_latent_encoder(config, latent_encoder)
    if config.source == "latent":
        return LatentSource(config, latent_encoder)
    if config.source == "model":
        return ModelSource(config, peft_model)
    return None


def check_latent_encoder(config: FlareConfig, latent_encoder: LatentEncoder | None) -> None:
    """FlareError for a FLARE-MT config without its latent encoder."""
    if config.source == "latent" and latent_encoder is None:
        raise FlareError("FlareConfig(source='latent') needs a latent_encoder (LatentEncoder)")


def is_encoder_decoder(model: nn.Module) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def source_body(model: nn.Module) -> nn.Module:
    """What the English pass runs through: the transformer body without the task head
    (no vocabulary logits), or the encoder of an encoder-decoder model."""
    if is_encoder_decoder(model):
        return model.get_encoder()
    return model.base_model


@contextmanager
def recorded_inputs(layers: Mapping[str, nn.Module]) -> Iterator[dict[str, Tensor]]:
    """Record the input ``[B, S, d_in]`` of each of ``layers`` under its name while the
    block runs, through forward pre-hooks removed at its end. Layers that receive the
    same input (e.g. ``q_proj`` and ``v_proj`` of one layer) record one tensor."""
    recorded: dict[str, Tensor] = {}

    def recorder(name: str):
        def record(module, args, kwargs):
            recorded[name] = args[0] if args else kwargs["x"]

        return record

    handles = [
        layer.register_forward_pre_hook(recorder(name), with_kwargs=True)
        for name, layer in layers.items()
    ]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def _layer_index(name: str) -> int:
    match = re.search(r"\.(\d+)\.", name)
    if match is None:
        raise FlareError(
            f"cannot tell which layer {name!r} belongs to (no layer number in its name)"
        )
    return int(match.group(1))


def _shift_layer(name: str, offset: int) -> str:
    """``...layers.3.q_proj`` -> ``...layers.{3+offset}.q_proj`` (missing layer: zero source)."""
    if offset == 0:
        return name
    index = _layer_index(name)
    return re.sub(r"\.(\d+)\.", f".{index + offset}.", name, count=1)
