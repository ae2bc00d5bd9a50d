"""Evaluating a FLARE adapter without its English: the target text alone, ``phi(0, t)``.

FLARE fuses the English pass into the target pass. Run with ``target_only=True``, the
same adapter reads the target text only, which tells how much of its score the English
at test time brings (and gives a number for a language with no English to hand).
:func:`without_english` turns a prepared FLARE setup into one that neither tokenizes
nor feeds the English, and whose result says it read none.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from torch import Tensor, nn

from flare_xlt.errors import FlareError
from flare_xlt.model import FlareModel
from flare_xlt.recipes.methods import Method

if TYPE_CHECKING:  # stage 2 evaluates without English through this module
    from flare_xlt.recipes.stage2 import MethodSetup


class TargetOnlyModel(nn.Module):
    """A FLARE model whose ``forward`` and ``generate`` always run with ``target_only=True``.

    Only the target stream reaches it (it is not a :class:`FlareModel`, so the scorers
    pass it no English ids).
    """

    def __init__(self, flare: FlareModel) -> None:
        super().__init__()
        self.flare = flare

    @property
    def config(self):
        """The base model's transformers config (scorers read e.g. its decoder start token)."""
        return self.flare.config

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, **kwargs):
        """The FLARE model's output on the target text ``[B, T]`` alone."""
        return self.flare(
            input_ids=input_ids, attention_mask=attention_mask, target_only=True, **kwargs
        )

    def generate(self, input_ids: Tensor, attention_mask: Tensor | None = None, **kwargs):
        """``[B, T + new]`` ids generated from the target prompt ``[B, T]`` alone."""
        return self.flare.generate(
            input_ids=input_ids, attention_mask=attention_mask, target_only=True, **kwargs
        )


def check_target_only(method: Method) -> None:
    """FlareError unless ``method`` trains a FLARE adapter with an English pass to drop."""
    if not method.can_drop_english:
        raise FlareError(
            f"--target-only drops the English pass of a FLARE adapter (method flare); "
            f"method {method.name!r} has none to drop"
        )


def without_english(setup: MethodSetup) -> MethodSetup:
    """``setup`` (a FLARE adapter) evaluated on the target text alone.

    The featurizer no longer tokenizes the English (test data without an English side
    work too), the model runs with ``target_only=True``, and the method reports that it
    used no English at test time (``english_side="none"``).
    """
    check_target_only(setup.method)
    if not isinstance(setup.model, FlareModel):
        raise FlareError("--target-only needs a trained FLARE adapter: pass --adapter DIR")
    setup.model.source_cache = None  # no English states to cache
    method = replace(setup.method, source=None, uses_english=False)
    return replace(
        setup,
        method=method,
        model=TargetOnlyModel(setup.model),
        featurize=replace(setup.featurize, method=method),
    )
