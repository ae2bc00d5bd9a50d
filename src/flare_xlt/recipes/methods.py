"""The stage-2 methods compared in the paper, as data.

Every method starts from the same stage-1 English task model. A method says
whether it trains a new adapter, what the adapter fuses (``source``), and which
text is the model's main input. Everything else (batching, training,
evaluation) is one shared code path in :mod:`flare_xlt.recipes.stage2`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flare_xlt.errors import FlareError

MainInput = Literal["target", "source", "concat"]


@dataclass(frozen=True)
class Method:
    """One way of going from the English task model to the target language.

    Attributes:
        name: registry name (``flare``, ``lora``, ...).
        trains: whether a stage-2 adapter is trained on target-language data.
        source: ``FlareConfig.source`` of that adapter (None = plain LoRA).
        main_input: the model's input text: the target text, its English
            translation (``source``), or both concatenated (``concat``).
        uses_english: whether the method needs the English side at test time.
        mixup: X-Mixup: a plain LoRA whose target pass is mixed with its English
            pass at one layer (:class:`~flare_xlt.baselines.xmixup.XMixupModel`).
    """

    name: str
    trains: bool
    source: Literal["model", "latent"] | None
    main_input: MainInput
    uses_english: bool
    mixup: bool = False

    @property
    def english_pass(self) -> bool:
        """Whether the model also runs the English text (FLARE's source pass, X-Mixup)."""
        return self.source == "model" or self.mixup

    @property
    def can_drop_english(self) -> bool:
        """Whether it can be scored on the target text alone (a FLARE adapter, ``phi(0, t)``)."""
        return self.source == "model"


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("zero_shot", False, None, "target", False),  # stage-1 model on target text
        Method("translate_test", False, None, "source", True),  # stage-1 model on English text
        Method("lora", True, None, "target", False),  # LoRA translate-train
        Method("input_fusion", True, None, "concat", True),  # LoRA on English + target text
        Method("flare", True, "model", "target", True),  # fusion with the English pass
        Method("flare_mt", True, "latent", "target", False),  # latent translation
        Method("x_mixup", True, None, "target", True, mixup=True),  # mixup with the English pass
    )
}


def get_method(name: str) -> Method:
    """The method called ``name``; a clear error for unknown ones."""
    if name in METHODS:
        return METHODS[name]
    raise FlareError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
