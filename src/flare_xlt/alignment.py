"""Which source token each target token is fused with.

The result of alignment is a gather index of shape ``[B, T]``: entry ``[b, j]``
is the position in the source sequence whose representation target token ``j``
of example ``b`` receives, or ``-1`` for "no partner" (the token then sees a
zero source, i.e. ``phi(0, t)``). The same function serves training,
teacher-forced evaluation and cached generation: with a KV cache the model is
called with only the newest tokens, while ``attention_mask`` still covers the
whole sequence, so each new token's absolute position is known.

Modes (``P`` real prompt tokens of rank ``j = 0 .. P-1`` on the target side, ``S``
real source tokens of rank ``k = 0 .. S-1``; padding never counts):

* ``token_index``: ``j -> k = j`` (start-anchored; the first tokens meet, e.g.
  CLS meets CLS in an encoder).
* ``end``: ``j -> k = S - P + j`` (end-anchored; the last prompt token, where a
  causal LM reads its answer, meets the last English token, whose state has read
  the whole English prompt).
* ``proportional``: ``j -> k = round(j (S - 1) / (P - 1))`` (both ends meet, the
  middle is stretched).
* ``pooled``: every target token meets one pooled source state, the mean over
  the real source tokens (alignment-free; the source is pooled before fusion,
  see :func:`pool_real_tokens`).
* ``position``: raw padded positions ``p -> p`` (the reference code), where ``p``
  counts the padding the target and the source were given with; a target token
  whose position is source padding (or past the source) has no partner. This is
  the only mode that depends on the padding.

Tokens after the prompt (a generated or teacher-forced answer, rank ``j >= P``)
get the partner ``answer_partner`` says: ``none`` (-1), ``last`` (the last real
source token; for ``pooled``, the pooled state), or ``aligned`` (no prompt anchor:
the mode is applied to the whole sequence as it grows, which is how adapters saved
before 0.2 were trained).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ALIGNMENTS = ("token_index", "end", "proportional", "pooled", "position")
ANSWER_PARTNERS = ("none", "last", "aligned")
# What a user who changes nothing gets (measured: see docs/results.md, alignment ablation).
DEFAULT_ALIGNMENT = {"causal": "end", "encoder": "token_index", "latent": "pooled"}
DEFAULT_ANSWER_PARTNER = "none"


def default_alignment(source: str | None, causal: bool) -> str:
    """The measured default for a FLARE-MT adapter (``source="latent"``), or for FLARE on a
    causal LM / an encoder."""
    if source == "latent":
        return DEFAULT_ALIGNMENT["latent"]
    return DEFAULT_ALIGNMENT["causal" if causal else "encoder"]


def alignment_index(
    target_mask: Tensor,
    num_new_tokens: int,
    source_mask: Tensor,
    mode: str = "token_index",
    prompt_lengths: Tensor | None = None,
    answer_partner: str = "aligned",
) -> Tensor:
    """Gather index from target positions into source positions.

    Args:
        target_mask: ``[B, T_total]`` attention mask of the whole target sequence
            so far (1 = real token), including tokens already in the KV cache.
        num_new_tokens: ``T``, the number of tokens in this forward call; they are
            the last ``T`` positions of ``target_mask``.
        source_mask: ``[B, S]`` mask of the source sequence (1 = real token); for
            ``position``, the mask as padded when given (``SourceBatch.padded_mask``).
        mode: one of :data:`ALIGNMENTS` (see the module docstring).
        prompt_lengths: ``[B]`` number of real target tokens that belong to the
            prompt (the anchor); None = every real token of ``target_mask``.
        answer_partner: the partner of tokens after the prompt, one of
            :data:`ANSWER_PARTNERS`.

    Returns:
        ``[B, T]`` long tensor of source positions, ``-1`` where there is no partner.
        For ``position`` the positions address the packed source (its real tokens
        first, in order, as :func:`pack_real_tokens_first` leaves them, which is how
        the model runs the source pass), not the padded ``source_mask``.
    """
    target_mask = target_mask.bool()
    source_mask = source_mask.bool()
    rank = (target_mask.long().cumsum(dim=-1) - 1)[:, -num_new_tokens:]  # [B, T]
    is_real = target_mask[:, -num_new_tokens:]
    num_real_sources = source_mask.sum(dim=-1, keepdim=True)  # [B, 1]
    if prompt_lengths is None or answer_partner == "aligned":
        prompt = target_mask.sum(dim=-1, keepdim=True)  # the whole sequence so far
    else:
        prompt = prompt_lengths.to(rank.device).long().view(-1, 1)
    in_prompt = rank < prompt

    if mode == "position":
        return _position_index(target_mask, num_new_tokens, source_mask, in_prompt, answer_partner)

    source_rank = _source_rank(mode, rank, prompt, num_real_sources)
    if answer_partner == "last":  # the last source token (for pooled: the one pooled state)
        answer_rank = (num_real_sources - 1).expand_as(rank)
    else:
        answer_rank = torch.full_like(source_rank, -1)
    source_rank = torch.where(in_prompt, source_rank, answer_rank)
    has_partner = is_real & (source_rank >= 0) & (source_rank < num_real_sources)
    # Source positions of real tokens, in order, followed by padding positions.
    real_first = torch.argsort((~source_mask).to(torch.int8), dim=-1, stable=True)
    clamped = source_rank.clamp(0, max(source_mask.shape[1] - 1, 0))
    partner = real_first.gather(1, clamped)
    return torch.where(has_partner, partner, torch.full_like(partner, -1))


def _source_rank(mode: str, rank: Tensor, prompt: Tensor, num_sources: Tensor) -> Tensor:
    """``[B, T]`` rank among the real source tokens of each target token's partner (any value
    outside ``0 .. S-1`` means none), for target ranks ``rank`` ``[B, T]`` in a prompt of
    ``prompt`` ``[B, 1]`` tokens and ``num_sources`` ``[B, 1]`` real source tokens."""
    if mode == "token_index":
        return rank
    if mode == "end":
        return num_sources - prompt + rank
    if mode == "proportional":
        span = (prompt - 1).clamp(min=1)
        # round(j (S-1) / (P-1)), half up, in integers
        return (2 * rank * (num_sources - 1) + span) // (2 * span)
    if mode == "pooled":
        return torch.zeros_like(rank)
    raise ValueError(f"unknown alignment mode {mode!r}; choose one of {', '.join(ALIGNMENTS)}")


def _position_index(
    target_mask: Tensor,
    num_new_tokens: int,
    padded_source_mask: Tensor,
    in_prompt: Tensor,
    answer_partner: str,
) -> Tensor:
    """``[B, T]`` packed source position of each new target token under ``position``.

    Raw position ``p`` of the target meets raw position ``p`` of the padded source
    (``[B, S]``), which is the ``k``-th real source token or padding; the result is
    ``k``, or -1 for padding, positions past the source and, unless ``answer_partner``
    is ``last``, tokens after the prompt (``in_prompt`` ``[B, T]`` False).
    """
    batch, width = padded_source_mask.shape
    total = target_mask.shape[1]
    positions = torch.arange(total - num_new_tokens, total, device=target_mask.device)
    positions = positions.expand(batch, -1)  # [B, T]
    inside = positions < width
    clamped = positions.clamp(max=max(width - 1, 0))
    source_rank = padded_source_mask.long().cumsum(dim=-1) - 1  # [B, S]
    is_real = padded_source_mask.gather(1, clamped) & inside
    index = torch.where(is_real, source_rank.gather(1, clamped), torch.full_like(positions, -1))
    if answer_partner == "last":
        last = padded_source_mask.sum(dim=-1, keepdim=True) - 1  # [B, 1], -1 without a source
        answer = last.expand_as(index)
    else:
        answer = torch.full_like(index, -1)
    index = torch.where(in_prompt, index, answer)
    return torch.where(target_mask[:, -num_new_tokens:], index, torch.full_like(index, -1))


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


def pool_real_tokens(states: Tensor, mask: Tensor) -> Tensor:
    """Mean over each row's real tokens: ``[B, S, D]`` states, ``[B, S]`` mask -> ``[B, 1, D]``
    (zero for a row without real tokens)."""
    weights = mask.to(states.dtype).unsqueeze(-1)  # [B, S, 1]
    total = (states * weights).sum(dim=1, keepdim=True)
    return total / weights.sum(dim=1, keepdim=True).clamp(min=1)


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
