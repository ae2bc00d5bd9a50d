"""FLARE-MT's latent translation: a frozen encoder plus a trainable projection."""

from __future__ import annotations

import torch
from safetensors import SafetensorError
from torch import Tensor, nn

from flare_xlt.errors import FlareError, ModelUnavailableError


class LatentEncoder(nn.Module):
    """Frozen encoder whose projected last hidden states are the source of every fused layer.

    Args:
        encoder: any module returning ``last_hidden_state`` for ``input_ids`` and
            ``attention_mask``: an HF encoder (``AutoModel``) or the encoder of a
            seq2seq MT model (``AutoModelForSeq2SeqLM(...).get_encoder()``).
        hidden_size: the backbone's hidden size ``d`` (input size of the fused projections).
        name_or_path: recorded when the adapter is saved, to reload the encoder.
    """

    def __init__(self, encoder: nn.Module, hidden_size: int, name_or_path: str | None = None):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.encoder_hidden_size = _hidden_size_of(encoder)
        self.projection = nn.Linear(self.encoder_hidden_size, hidden_size)
        self.name_or_path = name_or_path

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, hidden_size: int, dtype: torch.dtype = torch.float32
    ) -> LatentEncoder:
        """Load an HF encoder, or the encoder half of a seq2seq model (NLLB, M2M100, mT5)."""
        from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

        from flare_xlt.models.hub import hub_options
        from flare_xlt.models.loading import resolve_source

        try:
            source, is_hub = resolve_source(name_or_path)
            options = hub_options() if is_hub else {}
            config = AutoConfig.from_pretrained(source, **options)
            if config.is_encoder_decoder:
                model = AutoModelForSeq2SeqLM.from_pretrained(source, dtype=dtype, **options)
                encoder = model.get_encoder()
            else:
                encoder = AutoModel.from_pretrained(source, dtype=dtype, **options)
        except (OSError, ValueError, SafetensorError, ModelUnavailableError) as err:
            raise ModelUnavailableError(
                f"could not load latent encoder {name_or_path!r}: {str(err).splitlines()[0]}"
            ) from None
        return cls(encoder, hidden_size, name_or_path=name_or_path)

    def train(self, mode: bool = True) -> LatentEncoder:
        super().train(mode)
        self.encoder.eval()  # frozen: never dropout
        return self

    @torch.no_grad()
    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Frozen states: ``[B, S]`` ids -> ``[B, S, d_enc]``."""
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return output.last_hidden_state

    def project(self, states: Tensor) -> Tensor:
        """``[B, S, d_enc]`` -> ``[B, S, d]`` (trainable)."""
        return self.projection(states.to(self.projection.weight.dtype))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """``[B, S]`` ids -> projected latent translation ``[B, S, d]``."""
        return self.project(self.encode(input_ids, attention_mask))


def _hidden_size_of(encoder: nn.Module) -> int:
    config = getattr(encoder, "config", None)
    for name in ("hidden_size", "d_model"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise FlareError(
        f"cannot tell the hidden size of latent encoder {type(encoder).__name__}: "
        "it needs a config with hidden_size or d_model"
    )
