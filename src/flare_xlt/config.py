"""FLARE adapter settings: one dataclass, validated on construction."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from flare_xlt.alignment import ALIGNMENTS, ANSWER_PARTNERS
from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object

FUSIONS = ("add", "mul", "add_relu", "mul_relu", "cross_attention", "gated")
SOURCES = ("model", "latent", None)
SOURCE_REPRESENTATIONS = ("projection_input", "hidden_state")

CONFIG_FILE = "flare_config.json"

# Attention query/value projection names of common architectures, tried in order.
DEFAULT_TARGET_MODULES = (("q_proj", "v_proj"), ("query", "value"), ("q", "v"))


@dataclass
class FlareConfig:
    """Settings of one FLARE adapter.

    Attributes:
        r: LoRA rank (size of the bottleneck where fusion happens).
        alpha: LoRA alpha; the update is scaled by ``alpha / r``.
        dropout: dropout on the adapter's input (both streams).
        target_modules: names of the projections to adapt. ``None`` picks the
            attention query and value projections (``q_proj/v_proj``,
            ``query/value`` or ``q/v``, whichever the model has).
        fusion_modules: which of the adapted projections fuse the source (names as in
            ``target_modules``); ``None`` = all of them. The others are plain LoRA. The
            paper's LLM setting adapts every linear layer and fuses in ``q_proj`` and
            ``v_proj`` only. Unused by plain LoRA (``source=None``).
        fusion: ``phi(A x_s, A x_t)``, one of :data:`FUSIONS`; ``add_relu`` is the
            paper's best. ``gated`` (ours) is ``relu(t) + g * relu(s)`` with a
            learnable per-rank gate ``g`` initialised to 1.
        source: ``"model"`` = FLARE (English pass through the same model),
            ``"latent"`` = FLARE-MT (a frozen encoder's states), ``None`` = plain LoRA.
        source_layer_offset: target layer ``i`` fuses source layer ``i + offset``.
        source_representation: ``"projection_input"`` fuses what the projection
            itself receives on the source pass; ``"hidden_state"`` fuses the
            layer's residual-stream hidden state (the reference code's choice).
        alignment: which source token each target token meets, one of
            :data:`~flare_xlt.alignment.ALIGNMENTS`: ``token_index`` (start-anchored),
            ``end`` (end-anchored), ``proportional``, ``pooled`` (every token meets the
            mean source state) or ``position`` (raw padded positions, the reference
            code). ``None`` picks the measured default for the backbone when the model
            is built (:func:`~flare_xlt.alignment.default_alignment`): ``end`` for causal
            LMs, ``token_index`` for encoders, ``pooled`` for FLARE-MT (``source="latent"``);
            the resolved value is what is saved.
        answer_partner: the partner of target tokens after the prompt (a generated or
            teacher-forced answer): ``none``, ``last`` (the last English token) or
            ``aligned`` (no prompt anchor; adapters saved before this key existed).
            ``None`` = ``none``, resolved when the model is built.
        source_dropout: per-example probability of withholding the source while
            training, so the adapter also works without a translation.
        modules_to_save: extra modules trained and saved in full (e.g. a
            classification head in stage 1), as in peft.
    """

    r: int = 8
    alpha: float = 16
    dropout: float = 0.0
    target_modules: list[str] | None = None
    fusion_modules: list[str] | None = None
    fusion: str = "add_relu"
    source: Literal["model", "latent"] | None = "model"
    source_layer_offset: int = 0
    source_representation: str = "projection_input"
    alignment: str | None = None
    answer_partner: str | None = None
    source_dropout: float = 0.0
    modules_to_save: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        for name in ("alpha", "dropout", "source_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FlareError(f"FlareConfig.{name} must be a number, got {value!r}")
        for name in ("target_modules", "fusion_modules", "modules_to_save"):
            value = getattr(self, name)
            if value is None:
                continue
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list | tuple) or not all(isinstance(v, str) for v in names):
                raise FlareError(
                    f"FlareConfig.{name} must be a list of module names, got {value!r}"
                )
            setattr(self, name, list(names))
        _check_choice("fusion", self.fusion, FUSIONS)
        _check_choice("source", self.source, SOURCES)
        _check_choice("source_representation", self.source_representation, SOURCE_REPRESENTATIONS)
        _check_choice("alignment", self.alignment, (*ALIGNMENTS, None))
        _check_choice("answer_partner", self.answer_partner, (*ANSWER_PARTNERS, None))
        if self.answer_partner == "aligned" and self.alignment in ("end", "proportional", None):
            chosen = (
                "left unset (end for causal LMs)"
                if self.alignment is None
                else (f"{self.alignment!r}")
            )
            raise FlareError(
                f"FlareConfig.answer_partner='aligned' cannot go with alignment {chosen}: "
                "without a prompt anchor the end moves as tokens are generated; use "
                "answer_partner='none' or 'last', or set alignment='token_index'"
            )
        if not isinstance(self.r, int) or self.r <= 0:
            raise FlareError(f"FlareConfig.r must be a positive integer, got {self.r!r}")
        if self.alpha <= 0:
            raise FlareError(f"FlareConfig.alpha must be > 0, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise FlareError(f"FlareConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.source_dropout <= 1.0:
            raise FlareError(
                f"FlareConfig.source_dropout must be in [0, 1], got {self.source_dropout!r}"
            )
        if not isinstance(self.source_layer_offset, int) or self.source_layer_offset < 0:
            raise FlareError(
                "FlareConfig.source_layer_offset must be a non-negative integer, "
                f"got {self.source_layer_offset!r}"
            )
        if self.source == "latent" and self.source_representation != "projection_input":
            raise FlareError(
                "FlareConfig.source_representation applies to source='model' only; "
                "leave it at 'projection_input' for source='latent'"
            )
        if self.fusion_modules is not None and self.target_modules is not None:
            outside = sorted(set(self.fusion_modules) - set(self.target_modules))
            if outside or not self.fusion_modules:
                problem = f"{outside} are not among them" if outside else "it is empty"
                raise FlareError(
                    f"FlareConfig.fusion_modules must name some of target_modules "
                    f"{self.target_modules}; {problem}"
                )

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    @property
    def is_fusion(self) -> bool:
        """True for FLARE / FLARE-MT adapters, False for plain LoRA."""
        return self.source is not None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FlareConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FlareError(
                f"unknown FlareConfig key(s) {unknown}; valid keys are {sorted(known)}"
            )
        return cls(**data)

    def save(self, directory: str | Path, **extra: object) -> None:
        """Write ``flare_config.json`` (this config plus ``extra`` metadata) into ``directory``."""
        payload = {"flare": self.to_dict(), **extra}
        Path(directory, CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")

    @staticmethod
    def load_file(directory: str | Path) -> tuple[FlareConfig, dict]:
        """Read ``flare_config.json``: returns the config and the extra metadata."""
        path = Path(directory, CONFIG_FILE)
        if not path.is_file():
            raise FlareError(f"{path} not found: is {directory} a directory saved by FlareModel?")
        payload = read_json_object(path)
        if "flare" not in payload:
            raise FlareError(f'{path} has no "flare" key: is it a file saved by FlareModel?')
        settings = payload.pop("flare")
        if not isinstance(settings, dict):
            raise FlareError(f'{path}: "flare" must be a JSON object of FlareConfig settings')
        # Files written before answer_partner existed fused answer tokens by the same rule
        # as the prompt (no anchor): load them as they were trained.
        settings.setdefault("answer_partner", "aligned")
        return FlareConfig.from_dict(settings), payload


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise FlareError(f"FlareConfig.{name}={value!r} is not valid; choose one of {valid}")
