"""Counting the texts that featurizers cut to their token limit, and logging it per split.

A featurizer keeps a :class:`Truncations` tally: per input stream (``input``, the
model's main input; ``English``, FLARE's source pass; ``latent``, FLARE-MT's
encoder input) how many texts it tokenized and how many were longer than the
limit and cut. :func:`featurize_split` featurizes one split and logs one line,
e.g. ``nusax_senti/jav/train: 12 of 500 input texts cut to 96 tokens``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger("flare_xlt")


@dataclass
class Truncations:
    """Texts tokenized and texts cut, per input stream, since the last :meth:`clear`.

    Attributes:
        seen: texts tokenized, by stream.
        cut: texts longer than their limit (and cut to it), by stream.
        limits: the token limit of each stream.
    """

    seen: dict[str, int] = field(default_factory=dict)
    cut: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)

    def add(self, stream: str, length: int, limit: int) -> None:
        """Count one text of ``stream`` that had ``length`` tokens before the cut to ``limit``."""
        self.seen[stream] = self.seen.get(stream, 0) + 1
        self.cut[stream] = self.cut.get(stream, 0) + int(length > limit)
        self.limits[stream] = limit

    def clear(self) -> None:
        """Start counting afresh (a new split)."""
        self.seen.clear()
        self.cut.clear()
        self.limits.clear()

    def summary(self) -> str:
        """``"12 of 500 input texts cut to 96 tokens, 0 of 500 English texts cut to 96 tokens"``."""
        if not self.seen:
            return "no texts tokenized"
        return ", ".join(
            f"{self.cut[stream]} of {seen} {stream} texts cut to {self.limits[stream]} tokens"
            for stream, seen in self.seen.items()
        )


def featurize_split(featurize: Callable, examples: Sequence, name: str) -> list[dict]:
    """``featurize`` applied to one split's ``examples``; logs how many texts were cut.

    ``featurize`` is a featurizer with a ``truncations`` tally; ``name`` names the split
    in the log line (``task/language/split``).
    """
    featurize.truncations.clear()
    features = [featurize(example) for example in examples]
    logger.info("%s: %s", name, featurize.truncations.summary())
    return features
