"""Checks of the tensors a :class:`~flare_xlt.model.FlareModel` is called with.

Each wrong type, dtype, shape, batch size, token id or length is a one-line
:class:`~flare_xlt.errors.FlareError` naming the argument, instead of an error from
deep inside the model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flare_xlt.errors import FlareError


def check_target(
    input_ids: Tensor | None,
    attention_mask: Tensor | None,
    inputs_embeds: Tensor | None,
    model: nn.Module,
) -> int:
    """Check the target ``input_ids`` ``[B, T]`` (or ``inputs_embeds`` ``[B, T, d]``) and
    its ``attention_mask`` ``[B, T]`` against ``model``; returns ``B``."""
    size = target_batch_size(input_ids, inputs_embeds)
    check_ids("input_ids", input_ids, attention_mask, "attention_mask", None)
    check_tokens("input_ids", input_ids, model)
    if input_ids is not None:
        check_length("input_ids", input_ids.shape[1], model)
    return size


def target_batch_size(input_ids: Tensor | None, inputs_embeds: Tensor | None) -> int:
    """``B`` of the target ``input_ids`` ``[B, T]`` (or ``inputs_embeds`` ``[B, T, d]``)."""
    tokens = input_ids if input_ids is not None else inputs_embeds
    if tokens is None:
        raise FlareError("input_ids (or inputs_embeds) is required")
    return tokens.shape[0]


def check_ids(
    name: str, ids: Tensor | None, mask: Tensor | None, mask_name: str, batch_size: int | None
) -> None:
    """Clear ValueErrors for wrong types, dtypes, shapes and batch sizes.

    ``ids`` must be an integer ``[B, S]`` tensor (``B`` = ``batch_size`` unless that is
    None) and ``mask``, if given, a ``[B, S]`` tensor; None ids pass.
    """
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


def check_tokens(name: str, ids: Tensor | None, producer: nn.Module) -> None:
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


def check_length(name: str, length: int, model: nn.Module) -> None:
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
