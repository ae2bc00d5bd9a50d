"""``FlareModel``: any Hugging Face model with FLARE adapters, as a peft-style wrapper.

It builds, runs, generates and saves; the source side (the English pass or the latent
encoder, the source cache, layer keys) is :mod:`flare_xlt.sources`, the step's state
read by the fused layers and the alignment hooks :mod:`flare_xlt.fusion_context`, saving and
loading :mod:`flare_xlt.save_and_load`, and the input checks :mod:`flare_xlt.inputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from flare_xlt import save_and_load
from flare_xlt.alignment import DEFAULT_ANSWER_PARTNER, default_alignment
from flare_xlt.cache import SourceCache
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.fusion_context import FusionContext
from flare_xlt.inputs import check_target, checked_prompt_lengths
from flare_xlt.latent import LatentEncoder
from flare_xlt.layer import find_target_modules, fused_layers, inject_flare
from flare_xlt.models.loading import is_decoder_config
from flare_xlt.sources import (
    build_source,
    check_latent_encoder,
    is_encoder_decoder,
    source_body,
)


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
        self.source = build_source(config, peft_model, latent_encoder)
        self.context = FusionContext(config.alignment, config.answer_partner)
        self.source_cache: SourceCache | None = None
        for name, layer in fused_layers(peft_model).items():
            layer.flare_context = self.context
            layer.flare_source_key = "" if self.source is None else self.source.layer_key(name)
        self.train(self.hf_model.training)  # keep the base model's mode
        # alignment is computed where the target text enters: the model, or its encoder
        # (which generate calls directly, without the model's forward)
        body = source_body(self.hf_model)
        aligned = body if is_encoder_decoder(self.hf_model) else self.hf_model
        aligned.register_forward_pre_hook(self.context.align_target, with_kwargs=True)
        if body is not aligned:  # the body called directly must not fuse a stale source
            body.register_forward_pre_hook(self.context.forget_outside_calls)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_base(
        cls,
        base_model: nn.Module,
        config: FlareConfig,
        latent_encoder: LatentEncoder | None = None,
    ) -> FlareModel:
        """Add fresh FLARE adapters to ``base_model`` (modified in place; base weights frozen)."""
        check_latent_encoder(config, latent_encoder)
        if is_encoder_decoder(base_model) and not hasattr(base_model, "get_encoder"):
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
        return save_and_load.from_pretrained(
            cls, base_model, directory, latent_encoder, allow_different_base
        )

    def save_pretrained(self, directory: str | Path) -> None:
        """Write peft adapter files, ``flare_config.json`` and, for FLARE-MT, the projection."""
        save_and_load.save_pretrained(self, directory)

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
    def device(self) -> torch.device:
        return next(self.hf_model.parameters()).device

    def trainable_parameters(self) -> ParameterSummary:
        return ParameterSummary.of(self)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None):
        """Recompute each layer's activations in ``backward`` (transformers' activation
        checkpointing); the source stays in the context for the recompute."""
        options = dict(gradient_checkpointing_kwargs or {})
        if self.source is not None:
            self.source.check_checkpointing(options)
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
        embeds = kwargs.get("inputs_embeds")
        batch_size = check_target(input_ids, attention_mask, embeds, self.hf_model)
        sources = _source_inputs(
            source_input_ids, source_attention_mask, latent_input_ids, latent_attention_mask
        )
        self._start_step(batch_size, sources, cache_keys, target_only)
        self.context.prompt_lengths = checked_prompt_lengths(
            prompt_lengths, input_ids, attention_mask, embeds
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
        batch_size = check_target(input_ids, attention_mask, None, self.hf_model)
        sources = _source_inputs(
            source_input_ids, source_attention_mask, latent_input_ids, latent_attention_mask
        )
        self._start_step(batch_size, sources, None, target_only)
        self.context.prompt_lengths = attention_mask.bool().sum(dim=-1)
        try:
            with self.context.calling():
                return self.hf_model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs
                )
        finally:
            self.context.clear()

    def _start_step(
        self,
        batch_size: int,
        sources: dict[str, Tensor | None],
        cache_keys: Sequence[str] | None,
        target_only: bool,
    ) -> None:
        """Clear the last step's state and set this step's source (see :meth:`forward`)."""
        self.context.clear()
        if self.source is not None:
            self.context.source = self.source.batch(
                sources, batch_size, self.source_cache, cache_keys, target_only, self.training
            )


def _source_inputs(
    source_input_ids: Tensor | None,
    source_attention_mask: Tensor | None,
    latent_input_ids: Tensor | None,
    latent_attention_mask: Tensor | None,
) -> dict[str, Tensor | None]:
    """The source arguments by name, as :meth:`Source.batch <flare_xlt.sources.Source.batch>`
    picks its own: ``[B, S]`` English or ``[B, S']`` latent-encoder ids and masks."""
    return {
        "source_input_ids": source_input_ids,
        "source_attention_mask": source_attention_mask,
        "latent_input_ids": latent_input_ids,
        "latent_attention_mask": latent_attention_mask,
    }
