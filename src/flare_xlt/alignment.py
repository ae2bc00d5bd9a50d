"""Which source token each target token is fused with.

The result of alignment is a gather index of shape ``[B, T]``: entry ``[b, j]``
is the position in the source sequence whose representation target token ``j``
of example ``b`` receives, or ``-1`` for "no partner" (the token then sees a
zero source, i.e. ``phi(0, t)``). The same function serves training,
teacher-forced evaluation and cached generation: with a KV cache the model is
called with only the newest tokens, while ``attention_mask`` still covers the
whole sequence, so each new token's absolute position is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def alignment_index(
    target_mask: Tensor,
    num_new_tokens: int,
    source_mask: Tensor,
    mode: str = "token_index",
) -> Tensor:
    """Gather index from target positions into source positions.

    Args:
        target_mask: ``[B, T_total]`` attention mask of the whole target sequence
            so far (1 = real token), including tokens already in the KV cache.
        num_new_tokens: ``T``, the number of tokens in this forward call; they are
            the last ``T`` positions of ``target_mask``.
        source_mask: ``[B, S]`` mask of the source sequence (1 = real token).
        mode: ``"token_index"`` pairs the k-th real target token with the k-th
            real source token, whatever the padding side or amount;
            ``"position"`` pairs raw positions ``p -> p`` (the reference code).

    Returns:
        ``[B, T]`` long tensor of source positions, ``-1`` where there is no partner.
    """
    target_mask = target_mask.bool()
    source_mask = source_mask.bool()
    total = target_mask.shape[1]
    num_sources = source_mask.shape[1]
    if mode == "position":
        positions = torch.arange(total - num_new_tokens, total, device=target_mask.device)
        index = positions.expand(target_mask.shape[0], -1)
        return torch.where(index < num_sources, index, torch.full_like(index, -1))

    # Rank of each target token among the real ones: 0 for the first real token.
    target_rank = (target_mask.long().cumsum(dim=-1) - 1)[:, -num_new_tokens:]
    is_real = target_mask[:, -num_new_tokens:]
    # Source positions of real tokens, in order, followed by padding positions.
    real_first = torch.argsort((~source_mask).to(torch.int8), dim=-1, stable=True)
    num_real_sources = source_mask.sum(dim=-1, keepdim=True)
    has_partner = is_real & (target_rank >= 0) & (target_rank < num_real_sources)
    partner = real_first.gather(1, target_rank.clamp(0, max(num_sources - 1, 0)))
    return torch.where(has_partner, partner, torch.full_like(partner, -1))


@dataclass(frozen=True)
class Alignment:
    """An alignment index prepared once per step for every fused layer.

    Attributes:
        index: ``[B, T]`` source position per target token, ``-1`` = no partner.
        safe_index: ``[B, T]`` the same with ``-1`` replaced by 0 (a valid gather index).
        missing: ``[B, T, 1]`` True where a token has no partner; None when all have one.
    """

    index: Tensor
    safe_index: Tensor
    missing: Tensor | None

    @classmethod
    def from_index(cls, index: Tensor) -> Alignment:
        """Wrap an :func:`alignment_index` result: ``[B, T]`` long, ``-1`` = no partner.

        ``safe_index`` is ``[B, T]`` and ``missing`` ``[B, T, 1]`` (None when every
        target token has a partner).
        """
        missing = (index < 0).unsqueeze(-1)
        return cls(index, index.clamp(min=0), missing if bool(missing.any()) else None)


def gather_aligned(source: Tensor, alignment: Alignment) -> Tensor:
    """Pick each target token's source partner.

    Args:
        source: ``[B, S, D]`` source representations.
        alignment: from :func:`alignment_index` via :meth:`Alignment.from_index`.

    Returns:
        ``[B, T, D]``; rows without a partner are zero.
    """
    gather_index = alignment.safe_index.unsqueeze(-1).expand(-1, -1, source.shape[-1])
    picked = source.gather(1, gather_index)
    if alignment.missing is None:
        return picked
    return picked.masked_fill(alignment.missing, 0.0)


def pack_real_tokens_first(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Move each row's real tokens to the front (in order) and trim trailing padding.

    ``[B, S]`` ids and mask -> ``[B, S']`` with ``S' = max real length``. Running the
    source pass on packed input makes source states independent of the padding
    side and amount, also for models with absolute position embeddings.
    """
    order = torch.argsort((~mask.bool()).to(torch.int8), dim=-1, stable=True)
    width = max(int(mask.bool().sum(dim=-1).max()), 1)
    order = order[:, :width]
    return ids.gather(1, order), mask.gather(1, order)
