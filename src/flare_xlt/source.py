"""Source-side state shared by the fused layers during one step.

A :class:`FusionContext` is created per :class:`~flare_xlt.model.FlareModel` and
referenced by every fused layer. The model sets it before the target forward
and leaves it in place until the next step, so that gradient checkpointing,
which re-runs layer forwards during ``backward()``, sees the same source.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import Tensor

from flare_xlt.alignment import Alignment, pool_real_tokens

LATENT_KEY = "latent"


def hidden_state_key(layer_index: int) -> str:
    """Source key of the residual-stream hidden state entering layer ``layer_index``."""
    return f"hidden_state.{layer_index}"


@dataclass
class SourceBatch:
    """Source representations for one batch.

    Attributes:
        states: source key -> ``[B, S, D]`` tensor. Keys whose layers receive the
            same input (e.g. ``q_proj`` and ``v_proj`` of one layer) share one tensor.
        mask: ``[B, S]`` 1 for real source tokens, 0 for padding or withheld examples.
            The states are packed: each row's real tokens come first, in order.
        padded_mask: ``[B, S_given]`` the mask as the source was given, padding where
            the caller put it (``position`` alignment pairs raw positions); None = ``mask``.
    """

    states: dict[str, Tensor]
    mask: Tensor
    padded_mask: Tensor | None = None

    def withhold(self, dropped: Tensor) -> SourceBatch:
        """Mask out the whole source of the examples where ``dropped`` (``[B]`` bool) is set."""
        kept = (~dropped).unsqueeze(-1)
        padded = None if self.padded_mask is None else self.padded_mask * kept
        return SourceBatch(self.states, self.mask * kept.to(self.mask.dtype), padded)

    def repeat_rows(self, times: int) -> SourceBatch:
        """Each example ``times`` times in a row (``[B, ...]`` -> ``[B * times, ...]``), as
        ``generate`` expands the target batch for beams and returned sequences."""
        tensors, slots = self.unique_states()
        repeated = [tensor.repeat_interleave(times, dim=0) for tensor in tensors]
        states = {key: repeated[slot] for key, slot in slots.items()}
        padded = self.padded_mask
        if padded is not None:
            padded = padded.repeat_interleave(times, dim=0)
        return SourceBatch(states, self.mask.repeat_interleave(times, dim=0), padded)

    @property
    def alignment_mask(self) -> Tensor:
        """``[B, S_given]`` the mask as given, which ``position`` alignment reads."""
        return self.mask if self.padded_mask is None else self.padded_mask

    def pooled(self) -> SourceBatch:
        """Each state's mean over the real tokens: ``[B, S, D]`` -> ``[B, 1, D]``, mask
        ``[B, 1]`` (0 for an example without real tokens); aliases stay shared."""
        tensors, slots = self.unique_states()
        pooled = [pool_real_tokens(tensor, self.mask) for tensor in tensors]
        mask = (self.mask.sum(dim=-1, keepdim=True) > 0).to(self.mask.dtype)
        return SourceBatch({key: pooled[slot] for key, slot in slots.items()}, mask)

    def unique_states(self) -> tuple[list[Tensor], dict[str, int]]:
        """Distinct tensors and a key -> slot map (aliases share a slot)."""
        tensors: list[Tensor] = []
        slots: dict[str, int] = {}
        seen: dict[int, int] = {}
        for key, tensor in self.states.items():
            if id(tensor) not in seen:
                seen[id(tensor)] = len(tensors)
                tensors.append(tensor)
            slots[key] = seen[id(tensor)]
        return tensors, slots


@dataclass
class FusionContext:
    """Per-step state read by the fused layers.

    Attributes:
        source: the step's source batch, or None (every fused layer then uses a
            zero source, i.e. ``phi(0, t)``).
        alignment: where the current call's target tokens find their source
            partners (see :func:`flare_xlt.alignment.alignment_index`).
        capture: while not None, fused layers record their inputs here by key
            and run their frozen base projection only (the source pass).
        in_call: set while the FlareModel runs its own target forward; a direct call
            of the wrapped HF model clears the (stale) source instead of reusing it.
        prompt_lengths: ``[B]`` real prompt tokens per row, where alignment is anchored
            (set by ``generate`` from its prompt); None = the whole target sequence.
    """

    source: SourceBatch | None = None
    alignment: Alignment | None = None
    capture: dict[str, Tensor] | None = field(default=None)
    in_call: bool = False
    prompt_lengths: Tensor | None = None

    @contextmanager
    def calling(self):
        """Marks a target forward (or generation) started by the FlareModel itself."""
        self.in_call = True
        try:
            yield
        finally:
            self.in_call = False

    def source_for(self, key: str) -> Tensor | None:
        """The ``[B, S, D]`` source tensor of ``key``, or None when there is none."""
        if self.source is None:
            return None
        return self.source.states.get(key)

    def clear(self) -> None:
        self.source = None
        self.alignment = None
        self.capture = None
        self.prompt_lengths = None
