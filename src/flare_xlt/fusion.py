"""Fusion functions ``phi(s, t)`` applied inside the LoRA bottleneck.

All fusions see the target stream ``t = A x_t`` of shape ``[B, T, r]`` and the
source stream ``A x_s`` of shape ``[B, S, r]`` with its :class:`~flare_xlt.alignment.Alignment`
``[B, T]`` (see :mod:`flare_xlt.alignment`). Element-wise fusions combine each
target token with its aligned source token (zero where it has none);
cross-attention lets each target token attend over all real source tokens.
``source=None`` means "no source for the whole batch": element-wise fusions see
an all-zero source, and cross-attention reads nothing, as from a source without
real tokens.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flare_xlt.alignment import Alignment, gather_aligned
from flare_xlt.config import FUSIONS
from flare_xlt.errors import FlareError


class Fusion(nn.Module):
    """Base class: ``forward(target, source, alignment, source_mask) -> [B, T, r]``."""

    def forward(
        self,
        target: Tensor,
        source: Tensor | None,
        alignment: Alignment | None,
        source_mask: Tensor | None,
    ) -> Tensor:
        raise NotImplementedError


class ElementwiseFusion(Fusion):
    """Combines each target token with its aligned source token via :meth:`combine`."""

    def combine(self, source: Tensor, target: Tensor) -> Tensor:
        """``[B, T, r] x [B, T, r] -> [B, T, r]``."""
        raise NotImplementedError

    def forward(self, target, source, alignment, source_mask):
        """Fuse each target token with its aligned source token.

        Args:
            target: ``[B, T, r]`` target stream.
            source: ``[B, S, r]`` source stream, or None (a zero source).
            alignment: the ``[B, T]`` source position of each target token; needed
                when ``source`` is given.
            source_mask: ``[B, S]``; unused: the alignment already picks the partners.

        Returns:
            ``[B, T, r]``; a token without a partner is combined with a zero source.
        """
        aligned = torch.zeros_like(target) if source is None else gather_aligned(source, alignment)
        return self.combine(aligned, target)


class Add(ElementwiseFusion):
    """``s + t``; with a zero source this is plain LoRA."""

    def combine(self, source, target):
        return source + target


class Mul(ElementwiseFusion):
    """``s * t``."""

    def combine(self, source, target):
        return source * target


class AddRelu(ElementwiseFusion):
    """``relu(s) + relu(t)``: the paper's best fusion."""

    def combine(self, source, target):
        return torch.relu(source) + torch.relu(target)


class MulRelu(ElementwiseFusion):
    """``relu(s) * relu(t)``."""

    def combine(self, source, target):
        return torch.relu(source) * torch.relu(target)


class Gated(ElementwiseFusion):
    """``relu(t) + g * relu(s)`` with a learnable per-rank gate ``g`` (starts at 1 = add_relu)."""

    def __init__(self, r: int):
        super().__init__()
        self.gate = nn.Parameter(torch.ones(r))

    def combine(self, source, target):
        return torch.relu(target) + self.gate * torch.relu(source)


class CrossAttention(Fusion):
    """``t + softmax(Q t (K s)^T / sqrt(r)) V s`` over the real source tokens.

    Query from the target stream, keys and values from the source stream, all in
    the r-dimensional bottleneck (``3 (r^2 + r)`` parameters). A target token
    whose example has no real source token gets ``t`` unchanged.
    """

    def __init__(self, r: int):
        super().__init__()
        self.query = nn.Linear(r, r)
        self.key = nn.Linear(r, r)
        self.value = nn.Linear(r, r)

    def forward(self, target, source, alignment, source_mask):
        """Each target token attends over the real tokens of its example's source.

        Args:
            target: ``[B, T, r]`` target stream (the queries).
            source: ``[B, S, r]`` source stream (keys and values), or None.
            alignment: unused: attention needs no token pairing.
            source_mask: ``[B, S]``, 1 for real source tokens; needed when ``source`` is given.

        Returns:
            ``[B, T, r]``: ``target`` plus what it read; ``target`` itself without a source.
        """
        if source is None:  # an empty source: the output is ``target``, and every parameter
            source = target.new_zeros(target.shape[0], 1, target.shape[-1])  # still gets a
            source_mask = target.new_zeros(target.shape[0], 1)  # (zero) gradient, as DDP needs
        scores = self.query(target) @ self.key(source).transpose(1, 2)  # [B, T, S]
        scores = scores / math.sqrt(target.shape[-1])
        keep = source_mask.bool().unsqueeze(1)  # [B, 1, S]
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1) * keep.any(dim=-1, keepdim=True)
        return target + weights @ self.value(source)


_FUSION_CLASSES = {
    "add": Add,
    "mul": Mul,
    "add_relu": AddRelu,
    "mul_relu": MulRelu,
    "gated": Gated,
    "cross_attention": CrossAttention,
}
assert tuple(sorted(_FUSION_CLASSES)) == tuple(sorted(FUSIONS))


def build_fusion(name: str, r: int) -> Fusion:
    """Instantiate the fusion called ``name`` for rank ``r``."""
    if name not in _FUSION_CLASSES:
        raise FlareError(f"unknown fusion {name!r}; choose one of {', '.join(FUSIONS)}")
    cls = _FUSION_CLASSES[name]
    return cls(r) if cls in (Gated, CrossAttention) else cls()
