"""chrF: how close machine translations are to reference translations (sacrebleu).

chrF is the F-score of character n-grams (sacrebleu's defaults: n up to 6, beta = 2,
so recall counts twice as much as precision) over the whole corpus, in percent. It
suits the morphologically rich, low-resource languages FLARE is tested on better than
BLEU, which needs whole-word matches. Each score comes with sacrebleu's signature of
the exact settings and version, for a number that others can reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flare_xlt.errors import FlareError
from flare_xlt.evaluate.metrics import _check_lengths


@dataclass(frozen=True)
class ChrF:
    """A corpus chrF score.

    Attributes:
        score: chrF in percent (0-100).
        signature: sacrebleu's signature, e.g. ``nrefs:1|case:mixed|eff:yes|nc:6|nw:0|...``.
    """

    score: float
    signature: str


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> ChrF:
    """Corpus chrF of ``hypotheses`` against one reference each.

    Raises:
        FlareError: empty inputs, a length mismatch, or a value that is not a string.
    """
    from sacrebleu.metrics import CHRF  # imported here: only translation scoring needs it

    _check_lengths(hypotheses, references)
    for name, texts in (("hypothesis", hypotheses), ("reference", references)):
        bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
        if bad is not None:
            raise FlareError(f"{name} {bad} is {type(texts[bad]).__name__}, not text")
    metric = CHRF()
    score = metric.corpus_score(list(hypotheses), [list(references)]).score
    return ChrF(float(score), str(metric.get_signature()))
