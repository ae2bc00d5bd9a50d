"""``FlareModel``: any Hugging Face model with FLARE adapters and its source pass."""

from __future__ import annotations

import errno
import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from flare_xlt.alignment import (
    DEFAULT_ANSWER_PARTNER,
    Alignment,
    alignment_index,
    default_alignment,
    pack_real_tokens_first,
)
from flare_xlt.base_identity import check_same_base, describe_base, weights_fingerprint
from flare_xlt.cache import SourceCache
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.latent import LatentEncoder
from flare_xlt.layer import (
    find_target_modules,
    fused_layers,
    inject_flare,
    load_adapter,
    original_saved_modules,
    save_adapter,
    saved_module_wrappers,
)
from flare_xlt.models.loading import is_decoder_config
from flare_xlt.source import LATENT_KEY, FusionContext, SourceBatch, hidden_state_key

PROJECTION_FILE = "latent_projection.safetensors"
# What a source cache's producer record names of the model (its weights are fingerprinted).
DESCRIBED_SOURCE_MODEL = ("model_type", "hidden_size", "num_hidden_layers", "name_or_path")


@dataclass(frozen=True)
class ParameterSummary:
    trainable: int
    total: int

    def __str__(self) -> str:
        share = 100 * self.trainable / max(self.total, 1)
        return f"trainable params: {self.trainable:,} || all params: {self.total:,} || {share:.4f}%"

    @classmethod
    def of(cls, module: nn.Module) -> ParameterSummary:
        """Count the trainable and all parameters of ``module``."""
        params = list(module.parameters())
        return cls(
            sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
        )


class FlareModel(nn.Module):
    """A base model with FLARE adapters; ``forward`` runs the source pass, then the fused pass.

    Build it with :meth:`from_base` or :meth:`from_pretrained`. Inputs are the
    usual ``input_ids``/``attention_mask`` ``[B, T]`` of the target-language text,
    plus ``source_input_ids``/``source_attention_mask`` ``[B, S]`` (English text,
    for ``source="model"``) or ``latent_input_ids``/``latent_attention_mask``
    (the target text in the latent encoder's tokenizer, for ``source="latent"``).

    Encoder-decoder backbones (T5, mT5): the target text is the encoder input and the
    English pass runs through the encoder only. Fusion happens in the encoder's
    self-attention projections; the decoder's self-attention and cross-attention
    projections get plain LoRA, since decoder tokens (the answer being generated) have
    no English partner of their own and read the fused encoder states through
    cross-attention anyway.
    """

    def __init__(self, peft_model: nn.Module, config: FlareConfig, latent_encoder=None):
        super().__init__()
        self.peft_model = peft_model
        self.flare_config = config
        self.latent_encoder = latent_encoder
        self.context = FusionContext()
        self.source_cache: SourceCache | None = None
        self._producer: dict | None = None  # see _source_producer
        self._wire_layers()
        body = self._source_body
        accepts_cache = "use_cache" in inspect.signature(body.forward).parameters
        self._source_pass_options = {"use_cache": False} if accepts_cache else {}
        self.train(self.hf_model.training)  # keep the base model's mode
        # alignment is computed where the target text enters: the model, or its encoder
        # (which generate calls directly, without the model's forward)
        aligned = body if _is_encoder_decoder(self.hf_model) else self.hf_model
        aligned.register_forward_pre_hook(self._align_target, with_kwargs=True)
        if body is not aligned:  # the body called directly must not fuse a stale source
            body.register_forward_pre_hook(self._forget_outside_calls)
        self._body_saved_modules = saved_module_wrappers(body)  # fixed once adapters exist

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_base(
        cls,
        base_model: nn.Module,
        config: FlareConfig,
        latent_encoder: LatentEncoder | None = None,
    ) -> FlareModel:
        """Add fresh FLARE adapters to ``base_model`` (modified in place; base weights frozen)."""
        if config.source == "latent" and latent_encoder is None:
            raise FlareError("FlareConfig(source='latent') needs a latent_encoder (LatentEncoder)")
        if _is_encoder_decoder(base_model) and not hasattr(base_model, "get_encoder"):
            raise FlareError(
                f"{type(base_model).__name__} is an encoder-decoder model without get_encoder"
            )
        if config.target_modules is None:
            config = replace(config, target_modules=find_target_modules(base_model))
        if config.alignment is None or (config.alignment == "position" and not config.is_fusion):
            causal = is_decoder_config(base_model.config)
            config = replace(config, alignment=default_alignment(config.source, causal))
        if config.answer_partner is None:
            config = replace(config, answer_partner=DEFAULT_ANSWER_PARTNER)
        peft_model = inject_flare(base_model, config)
        return cls(peft_model, config, latent_encoder)

    @classmethod
    def from_pretrained(
        cls,
        base_model: nn.Module,
        directory: str | Path,
        latent_encoder: LatentEncoder | None = None,
        allow_different_base: bool = False,
    ) -> FlareModel:
        """Load adapters saved by :meth:`save_pretrained` onto ``base_model``.

        The base must be the one the adapter was trained on (same config settings and
        weights fingerprint, see :mod:`flare_xlt.base_identity`); ``allow_different_base``
        accepts another base of the same architecture and size on purpose.
        """
        config, meta = FlareConfig.load_file(directory)
        saved_base = meta.get("base_model", {})
        check_same_base(
            base_model, saved_base, directory, allow_different_base, config.modules_to_save
        )
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

    def save_pretrained(self, directory: str | Path) -> None:
        """Write peft adapter files, ``flare_config.json`` and, for FLARE-MT, the projection."""
        try:
            self._write(Path(directory))
        except (OSError, SafetensorError) as err:  # a file in the way, read-only, disk full
            reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
            raise FlareError(f"could not save the adapter to {directory}: {reason}") from None

    def _write(self, directory: Path) -> None:
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        save_adapter(self.peft_model, directory)
        extra = {"base_model": describe_base(self.hf_model, self.flare_config.modules_to_save)}
        if self.latent_encoder is not None:
            extra["latent_encoder"] = {"name_or_path": self.latent_encoder.name_or_path}
            save_file(
                {k: v.contiguous() for k, v in self.latent_encoder.projection.state_dict().items()},
                str(Path(directory, PROJECTION_FILE)),
            )
        self.flare_config.save(directory, **extra)

    def merge_and_unload(self) -> nn.Module:
        """Merge a plain-LoRA adapter into the base weights and return the base model."""
        if self.flare_config.is_fusion:
            raise FlareError(
                "merge_and_unload is only possible for plain LoRA adapters (source=None): a fusion "
                "adapter's output depends on the source input, so it cannot be folded into weights"
            )
        return self.peft_model.merge_and_unload()

    # ------------------------------------------------------------------ properties
    @property
    def hf_model(self) -> nn.Module:
        """The underlying transformers model (with the adapter layers injected)."""
        return self.peft_model.get_base_model()

    @property
    def config(self):
        """The transformers config of the base model (what HF tooling expects here)."""
        return self.hf_model.config

    @property
    def _no_split_modules(self) -> list[str] | None:
        """The base model's transformer blocks, so FSDP can wrap one block at a time."""
        return getattr(self.hf_model, "_no_split_modules", None)

    @property
    def _source_body(self) -> nn.Module:
        """What the English pass runs through: the transformer body without the task head
        (no vocabulary logits), or the encoder of an encoder-decoder model."""
        if _is_encoder_decoder(self.hf_model):
            return self.hf_model.get_encoder()
        return self.hf_model.base_model

    @property
    def device(self) -> torch.device:
        return next(self.hf_model.parameters()).device

    def trainable_parameters(self) -> ParameterSummary:
        return ParameterSummary.of(self)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None):
        """Recompute each layer's activations in ``backward`` (transformers' activation
        checkpointing); the source stays in the context for the recompute."""
        options = dict(gradient_checkpointing_kwargs or {})
        if self.flare_config.source == "latent" and options.get("use_reentrant"):
            raise FlareError(
                "FLARE-MT needs use_reentrant=False: its one latent source feeds every layer, "
                "and re-entrant checkpointing back-propagates through it once per layer"
            )
        enable = getattr(self.hf_model, "activation_checkpointing_enable", None)
        if enable is not None:  # transformers >= 5.2x; the old name warns
            enable(activation_checkpointing_kwargs=options or None)
        else:
            self.hf_model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs=options or None
            )

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        source_input_ids: Tensor | None = None,
        source_attention_mask: Tensor | None = None,
        latent_input_ids: Tensor | None = None,
        latent_attention_mask: Tensor | None = None,
        cache_keys: Sequence[str] | None = None,
        target_only: bool = False,
        prompt_lengths: Tensor | None = None,
        **kwargs,
    ):
        """Source pass (no grad, adapter off), then the fused target pass.

        Args:
            input_ids, attention_mask: target text ``[B, T]``.
            labels: passed to the base model (its loss is returned as usual).
            source_input_ids, source_attention_mask: English text ``[B, S]``.
            latent_input_ids, latent_attention_mask: target text for the latent encoder ``[B, S']``.
            cache_keys: one stable id per example; with ``self.source_cache`` set,
                source states are computed once per id and reused.
            target_only: run without any source (``phi(0, t)``) on purpose.
            prompt_lengths: ``[B]`` real prompt tokens per row when ``input_ids`` is a
                prompt followed by its answer (teacher-forced generation): alignment is
                anchored at the prompt's end, as in :meth:`generate`. None = all prompt.

        Returns:
            The base model's output object.
        """
        batch_size = _batch_size(input_ids, kwargs.get("inputs_embeds"))
        check_ids("input_ids", input_ids, attention_mask, "attention_mask", None)
        _check_tokens("input_ids", input_ids, self.hf_model)
        if input_ids is not None:
            _check_length("input_ids", input_ids.shape[1], self.hf_model)
        self.context.clear()
        self.context.source = self._source_batch(
            batch_size,
            source_input_ids,
            source_attention_mask,
            latent_input_ids,
            latent_attention_mask,
            cache_keys,
            target_only,
        )
        self.context.prompt_lengths = checked_prompt_lengths(
            prompt_lengths, input_ids, attention_mask, kwargs.get("inputs_embeds")
        )
        if labels is not None:
            kwargs["labels"] = labels
        with self.context.calling():
            return self.peft_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        source_input_ids: Tensor | None = None,
        source_attention_mask: Tensor | None = None,
        latent_input_ids: Tensor | None = None,
        latent_attention_mask: Tensor | None = None,
        target_only: bool = False,
        **generate_kwargs,
    ) -> Tensor:
        """``generate`` of the base model, each new token fused with its source partner.

        Every decoding step finds each token's source partner from its absolute
        position in ``attention_mask``, anchored at the end of the prompt
        (``input_ids``), so cached generation fuses exactly as a teacher-forced
        forward over the same sequence with ``prompt_lengths`` does.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        check_ids("input_ids", input_ids, attention_mask, "attention_mask", None)
        _check_tokens("input_ids", input_ids, self.hf_model)
        if input_ids is not None:
            _check_length("input_ids", input_ids.shape[1], self.hf_model)
        self.context.clear()
        self.context.source = self._source_batch(
            input_ids.shape[0],
            source_input_ids,
            source_attention_mask,
            latent_input_ids,
            latent_attention_mask,
            None,
            target_only,
        )
        self.context.prompt_lengths = attention_mask.bool().sum(dim=-1)
        try:
            with self.context.calling():
                return self.hf_model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs
                )
        finally:
            self.context.clear()

    # ------------------------------------------------------------------ source side
    def _source_batch(
        self,
        batch_size: int,
        source_input_ids: Tensor | None,
        source_attention_mask: Tensor | None,
        latent_input_ids: Tensor | None,
        latent_attention_mask: Tensor | None,
        cache_keys: Sequence[str] | None,
        target_only: bool,
    ) -> SourceBatch | None:
        """The step's source, after validation, caching and source dropout."""
        kind = self.flare_config.source
        ids, mask, ids_name = (
            (source_input_ids, source_attention_mask, "source_input_ids")
            if kind != "latent"
            else (latent_input_ids, latent_attention_mask, "latent_input_ids")
        )
        stray = latent_input_ids if kind != "latent" else source_input_ids
        if kind is not None and stray is not None:
            other = "latent_input_ids" if kind != "latent" else "source_input_ids"
            raise FlareError(f"{other} was given, but this adapter has source={kind!r}")
        if kind is None or target_only:
            return None
        if ids is None:
            if self.training and self.flare_config.source_dropout > 0:
                return None
            raise FlareError(
                f"{ids_name} is required for a source={kind!r} adapter; pass target_only=True "
                "to run without a source on purpose"
            )
        check_ids(ids_name, ids, mask, ids_name.replace("input_ids", "attention_mask"), batch_size)
        if ids.shape[1] == 0:
            raise FlareError(
                f"{ids_name} has no tokens (shape {tuple(ids.shape)}); pass target_only=True "
                "to run without a source on purpose"
            )
        if mask is None:
            mask = torch.ones_like(ids)
        producer = self.latent_encoder.encoder if kind == "latent" else self.hf_model
        _check_tokens(ids_name, ids[mask.bool()], producer)
        _check_length(ids_name, int(mask.bool().sum(dim=-1).max()), producer)
        if cache_keys is not None and len(cache_keys) != batch_size:
            raise FlareError(
                f"cache_keys has {len(cache_keys)} entries for a batch of {batch_size}"
            )
        batch = self._cached_or_computed(ids, mask, cache_keys)
        if self.flare_config.alignment == "pooled":
            batch = batch.pooled()
        if kind == "latent":
            projected = self.latent_encoder.project(batch.states[LATENT_KEY])
            batch = replace(batch, states={LATENT_KEY: projected})
        if self.training and self.flare_config.source_dropout > 0:
            dropped = torch.rand(batch_size, device=ids.device) < self.flare_config.source_dropout
            batch = batch.withhold(dropped)
        return batch

    def _cached_or_computed(
        self, ids: Tensor, mask: Tensor, cache_keys: Sequence[str] | None
    ) -> SourceBatch:
        """Frozen source states (before any trainable projection), from the cache when possible.

        The source pass runs on the packed input (real tokens first), so its states do not
        depend on the padding; ``position`` alignment keeps the mask as given beside them.
        """
        given_mask = mask
        ids, mask = pack_real_tokens_first(ids, mask)
        batch = self._packed_source(ids, mask, cache_keys)
        if self.flare_config.alignment == "position":  # pairs the raw padded positions
            batch = replace(batch, padded_mask=given_mask)
        return batch

    def _packed_source(
        self, ids: Tensor, mask: Tensor, cache_keys: Sequence[str] | None
    ) -> SourceBatch:
        """Source states of packed ``[B, S]`` ids, loaded from or stored in the cache."""
        use_cache = self.source_cache is not None and cache_keys is not None
        if use_cache:
            self.source_cache.bind(self._source_producer())
            tokens = [row[row_mask.bool()] for row, row_mask in zip(ids, mask, strict=True)]
            cached = self.source_cache.load(cache_keys, tokens, self._source_dtype(), ids.device)
            if cached is not None:
                return cached
        if self.flare_config.source == "latent":
            batch = SourceBatch({LATENT_KEY: self.latent_encoder.encode(ids, mask)}, mask)
        else:
            batch = self._source_pass(ids, mask)
        if use_cache:
            self.source_cache.store(cache_keys, batch, tokens)
        return batch

    def _source_dtype(self) -> torch.dtype:
        """The dtype the source states are computed in (the latent encoder's for FLARE-MT)."""
        latent = self.flare_config.source == "latent"
        producer = self.latent_encoder.encoder if latent else self.hf_model
        return next(producer.parameters()).dtype

    def _source_producer(self) -> dict:
        """What the cached source states depend on (JSON-native), for ``SourceCache.bind``.

        The frozen weights are fingerprinted once, on first use: a merged stage-1 model
        keeps its hub name, so the name alone cannot tell it from the original.
        """
        if self._producer is None:
            self._producer = self._describe_source_pass()
        return self._producer

    def _describe_source_pass(self) -> dict:
        config = self.flare_config
        producer = {
            "source": config.source,
            "source_representation": config.source_representation,
            "source_layer_offset": config.source_layer_offset,
            "target_modules": sorted(config.target_modules or []),
            "fusion_modules": sorted(config.fusion_modules or config.target_modules or []),
        }
        if config.source == "latent":
            producer["latent_encoder"] = self.latent_encoder.name_or_path
            producer["weights"] = weights_fingerprint(self.latent_encoder.encoder)
        else:
            base = describe_base(self.hf_model)
            producer["model"] = {key: base[key] for key in DESCRIBED_SOURCE_MODEL}
            producer["weights"] = base["weights"]
        return producer

    @torch.no_grad()
    def _source_pass(self, ids: Tensor, mask: Tensor) -> SourceBatch:
        """English input through the transformer body, adapter off (trained copies of
        ``modules_to_save`` too), eval mode, no graph."""
        body = self._source_body
        kwargs = {"input_ids": ids, "attention_mask": mask, **self._source_pass_options}
        was_training = self.training
        if was_training:
            self.eval()  # deterministic source: no dropout
        try:
            self.context.capture = {}  # fused layers record their input and skip the adapter
            with original_saved_modules(self._body_saved_modules):
                states = self._run_body(body, kwargs)
        finally:
            self.context.capture = None
            if was_training:
                self.train()
        return SourceBatch(states, mask)

    def _run_body(self, body: nn.Module, kwargs: dict) -> dict[str, Tensor]:
        """The source states of one body call: fused-layer inputs or hidden states by key."""
        if self.flare_config.source_representation == "hidden_state":
            hidden = body(**kwargs, output_hidden_states=True).hidden_states
            return {hidden_state_key(i): h for i, h in enumerate(hidden)}
        body(**kwargs)
        return self.context.capture

    def _align_target(self, module, args, kwargs):
        """Forward pre-hook on the HF model: align this call's target tokens to the source."""
        if self.context.capture is not None:  # the source pass itself (a model without a head)
            return None
        if not self.context.in_call:  # the HF model called directly: no stale source
            self.context.clear()
        source = self.context.source
        if source is None:
            self.context.alignment = None
            return None
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        tokens = input_ids if input_ids is not None else kwargs["inputs_embeds"]
        source, prompt_lengths = self._source_for_rows(source, tokens.shape[0])
        num_new = tokens.shape[1]
        mask = kwargs.get("attention_mask")
        if mask is None:
            past = kwargs.get("cache_position")
            total = num_new + (int(past[0]) if past is not None else 0)
            mask = torch.ones(tokens.shape[0], total, dtype=torch.long, device=tokens.device)
        config = self.flare_config
        index = alignment_index(
            mask,
            num_new,
            source.alignment_mask,
            config.alignment,
            prompt_lengths,
            config.answer_partner,
        )
        self.context.alignment = Alignment.from_index(index)
        return None

    def _source_for_rows(self, source: SourceBatch, rows: int) -> tuple[SourceBatch, Tensor | None]:
        """``source`` (``[B, S]``) and the prompt lengths (``[B]``) for a target batch of
        ``rows`` = ``B * k``: ``generate`` repeats each example once per beam and returned
        sequence (``k``), and each copy keeps its example's source: ``[B * k, S]``, copies
        next to each other."""
        examples = source.mask.shape[0]
        prompt_lengths = self.context.prompt_lengths
        if rows == examples:
            return source, prompt_lengths
        if rows % examples:
            raise FlareError(
                f"the target batch has {rows} rows but the source batch {examples} examples"
            )
        self.context.source = source.repeat_rows(rows // examples)
        if prompt_lengths is not None:
            prompt_lengths = prompt_lengths.repeat_interleave(rows // examples)
            self.context.prompt_lengths = prompt_lengths
        return self.context.source, prompt_lengths

    def _forget_outside_calls(self, module, args):
        """Forward pre-hook on the body: a direct call (not from this model) sees no source."""
        if not self.context.in_call and self.context.capture is None:
            self.context.clear()

    def _wire_layers(self) -> None:
        """Give each fused layer the shared context, its capture key and its source key."""
        layers = fused_layers(self.peft_model)
        config = self.flare_config
        for name, layer in layers.items():
            layer.flare_context = self.context
            layer.flare_key = name
            if config.source == "latent":
                layer.flare_source_key = LATENT_KEY
            elif config.source_representation == "hidden_state":
                layer.flare_source_key = hidden_state_key(
                    _layer_index(name) + config.source_layer_offset
                )
            else:
                layer.flare_source_key = _shift_layer(name, config.source_layer_offset)


def _is_encoder_decoder(model: nn.Module) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


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


def _batch_size(input_ids: Tensor | None, inputs_embeds: Tensor | None) -> int:
    tokens = input_ids if input_ids is not None else inputs_embeds
    if tokens is None:
        raise FlareError("input_ids (or inputs_embeds) is required")
    return tokens.shape[0]


def check_ids(
    name: str, ids: Tensor | None, mask: Tensor | None, mask_name: str, batch_size: int | None
) -> None:
    """Clear ValueErrors for wrong types, dtypes, shapes and batch sizes."""
    if ids is None:
        return
    if not isinstance(ids, Tensor) or ids.dtype.is_floating_point or ids.dim() != 2:
        what = (
            f"{ids.dtype} tensor of shape {tuple(ids.shape)}"
            if isinstance(ids, Tensor)
            else type(ids).__name__
        )
        raise FlareError(f"{name} must be a 2-D integer tensor [batch, length], got {what}")
    if batch_size is not None and ids.shape[0] != batch_size:
        raise FlareError(
            f"{name} has batch size {ids.shape[0]} but input_ids has {batch_size}: "
            "source and target batches must hold the same examples"
        )
    if mask is not None and (not isinstance(mask, Tensor) or mask.shape != ids.shape):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise FlareError(
            f"{mask_name} must have the shape of {name} {tuple(ids.shape)}, got {shape}"
        )


def checked_prompt_lengths(
    prompt_lengths: Tensor | None,
    input_ids: Tensor | None,
    attention_mask: Tensor | None,
    inputs_embeds: Tensor | None = None,
) -> Tensor | None:
    """``prompt_lengths`` ``[B]`` after checking it fits the batch (FlareError otherwise)."""
    if prompt_lengths is None:
        return None
    if attention_mask is not None:
        real = attention_mask.bool().sum(dim=-1)
    else:
        tokens = input_ids if input_ids is not None else inputs_embeds
        real = torch.full((tokens.shape[0],), tokens.shape[1], device=tokens.device)
    if (
        not isinstance(prompt_lengths, Tensor)
        or prompt_lengths.dtype.is_floating_point
        or tuple(prompt_lengths.shape) != tuple(real.shape)
    ):
        raise FlareError(
            f"prompt_lengths must be an integer tensor of shape [{real.shape[0]}] (one count "
            "of real prompt tokens per example)"
        )
    prompt_lengths = prompt_lengths.to(real.device)
    if bool(((prompt_lengths < 0) | (prompt_lengths > real)).any()):
        raise FlareError("prompt_lengths must lie between 0 and each row's real token count")
    return prompt_lengths


# Encoders whose position ids start after the padding index (``padding_idx + 1``).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text")


def _check_tokens(name: str, ids: Tensor | None, producer: nn.Module) -> None:
    """A one-line FlareError for ids (any shape) outside ``producer``'s vocabulary."""
    if ids is None or ids.numel() == 0:
        return
    try:
        vocab = getattr(producer.get_input_embeddings(), "num_embeddings", None)
    except (AttributeError, NotImplementedError):  # a custom latent encoder
        vocab = None
    low, high = int(ids.min()), int(ids.max())
    if vocab is not None and (low < 0 or high >= vocab):
        bad = low if low < 0 else high
        raise FlareError(
            f"{name} holds token id {bad}, outside the vocabulary of "
            f"{type(producer).__name__} (0..{vocab - 1}): was it made by another tokenizer?"
        )


def _check_length(name: str, length: int, model: nn.Module) -> None:
    """FlareError when ``length`` tokens do not fit ``model``'s position table."""
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    limit = getattr(text, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return
    if getattr(text, "model_type", None) in _OFFSET_POSITIONS:
        limit -= (getattr(text, "pad_token_id", None) or 0) + 1
    if length > limit:
        raise FlareError(
            f"{name} is {length} tokens long, but {type(model).__name__} has positions for "
            f"{limit}: truncate it (e.g. data.max_length)"
        )


def _hidden_size(model: nn.Module) -> int:
    config = model.config
    return getattr(config, "hidden_size", None) or config.get_text_config().hidden_size
