"""Source-side state shared by the fused layers during one step.

A :class:`FusionContext` is created per :class:`~flare_xlt.model.FlareModel` and
referenced by every fused layer. The model sets it before the target forward
and leaves it in place until the next step, so that gradient checkpointing,
which re-runs layer forwards during ``backward()``, sees the same source. Its
forward pre-hooks (:meth:`FusionContext.align_target`,
:meth:`FusionContext.forget_outside_calls`) align each call's target tokens to the
source where the target text enters the model.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from flare_xlt.alignment import Alignment, alignment_index, pool_real_tokens
from flare_xlt.errors import FlareError


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
        mode: the adapter's alignment mode (:data:`~flare_xlt.alignment.ALIGNMENTS`).
        answer_partner: the partner of tokens after the prompt
            (:data:`~flare_xlt.alignment.ANSWER_PARTNERS`).
        source: the step's source batch, or None (every fused layer then uses a
            zero source, i.e. ``phi(0, t)``).
        alignment: where the current call's target tokens find their source
            partners (see :func:`flare_xlt.alignment.alignment_index`).
        in_call: set while the FlareModel runs its own target forward; a direct call
            of the wrapped HF model clears the (stale) source instead of reusing it.
        prompt_lengths: ``[B]`` real prompt tokens per row, where alignment is anchored
            (set by ``generate`` from its prompt); None = the whole target sequence.
    """

    mode: str
    answer_partner: str
    source: SourceBatch | None = None
    alignment: Alignment | None = None
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
        self.prompt_lengths = None

    def align_target(self, module, args, kwargs) -> None:
        """Forward pre-hook where the target text enters: align this call's target tokens
        (``input_ids`` ``[B', T]`` or ``inputs_embeds`` ``[B', T, d]``, with the
        ``attention_mask`` ``[B', T_total]`` of the whole sequence so far) to the source.

        The source pass of a model without a task head runs through this hook too; it
        runs before the step's source is set, so it finds none to align.
        """
        if not self.in_call:  # the HF model called directly: no stale source
            self.clear()
        if self.source is None:
            self.alignment = None
            return
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        tokens = input_ids if input_ids is not None else kwargs["inputs_embeds"]
        source, prompt_lengths = self._source_for_rows(tokens.shape[0])
        num_new = tokens.shape[1]
        mask = kwargs.get("attention_mask")
        if mask is None:
            past = kwargs.get("cache_position")
            total = num_new + (int(past[0]) if past is not None else 0)
            mask = torch.ones(tokens.shape[0], total, dtype=torch.long, device=tokens.device)
        index = alignment_index(
            mask,
            num_new,
            source.alignment_mask,
            self.mode,
            prompt_lengths,
            self.answer_partner,
        )
        self.alignment = Alignment.from_index(index)

    def forget_outside_calls(self, module, args) -> None:
        """Forward pre-hook on the transformer body (the model without its task head), which
        can be called directly: such a call, not from the FlareModel, sees no source."""
        if not self.in_call:
            self.clear()

    def _source_for_rows(self, rows: int) -> tuple[SourceBatch, Tensor | None]:
        """The source (``[B, S]``) and the prompt lengths (``[B]``) for a target batch of
        ``rows`` = ``B * k``: ``generate`` repeats each example once per beam and returned
        sequence (``k``), and each copy keeps its example's source: ``[B * k, S]``, copies
        next to each other (kept for the later steps of the same generation)."""
        examples = self.source.mask.shape[0]
        if rows == examples:
            return self.source, self.prompt_lengths
        if rows % examples:
            raise FlareError(
                f"the target batch has {rows} rows but the source batch {examples} examples"
            )
        self.source = self.source.repeat_rows(rows // examples)
        if self.prompt_lengths is not None:
            self.prompt_lengths = self.prompt_lengths.repeat_interleave(rows // examples)
        return self.source, self.prompt_lengths
