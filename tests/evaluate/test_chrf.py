"""chrF through sacrebleu: values, signature and input checks."""

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.evaluate import chrf


def test_chrf_is_sacrebleus_corpus_score_in_percent():
    assert chrf(["the cat sat on the mat"], ["the cat sat on the mat"]).score == 100.0
    assert chrf(["xyz"], ["the cat"]).score == 0.0
    partial = chrf(["the cat sat", "a dog"], ["the cat sat on the mat", "a big dog"])
    assert 0 < partial.score < 100
    assert partial.signature.startswith("nrefs:1|") and "nc:6" in partial.signature


@pytest.mark.parametrize(
    ("hypotheses", "references", "message"),
    [
        ([], [], "cannot score empty"),
        (["a"], ["a", "b"], "1 predictions but 2 references"),
        (["a", None], ["a", "b"], "hypothesis 1 is NoneType, not text"),
        (["a"], [3], "reference 0 is int, not text"),
    ],
)
def test_bad_inputs_are_one_line_errors(hypotheses, references, message):
    with pytest.raises(FlareError, match=message):
        chrf(hypotheses, references)
