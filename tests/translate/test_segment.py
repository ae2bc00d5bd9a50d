"""Sentence splitting and passage segmentation: lossless, script-aware, within the limit."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_xlt.translate.segment import joiner, segment_passage, split_sentences


def word_count(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One. ", "Two! ", "Three? ", "Four"]),
        ("Pi is 3.14 and e.g. this stays. Next.", ["Pi is 3.14 and e.g. this stays. ", "Next."]),
        ('He said "Stop." Then left.', ['He said "Stop." ', "Then left."]),
        ("我爱你。你好吗？好。", ["我爱你。", "你好吗？", "好。"]),
        ("यह एक वाक्य है। यह दूसरा है।", ["यह एक वाक्य है। ", "यह दूसरा है।"]),
        ("မင်္ဂလာပါ။ နေကောင်းလား။", ["မင်္ဂလာပါ။ ", "နေကောင်းလား။"]),
        ("مرحبا؟ كيف حالك؟", ["مرحبا؟ ", "كيف حالك؟"]),
        ("heading without stop\nbody text", ["heading without stop\n", "body text"]),
        ("no boundary at all", ["no boundary at all"]),
        ("", []),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_short_passage_is_not_split():
    text = "One. Two. Three."
    assert segment_passage(text, word_count, 3) == [text]


def test_long_passage_is_split_into_sentences_within_limit():
    text = "A b c. D e f. G h i j k l m n o p, q r s t."
    pieces = segment_passage(text, word_count, 4)
    assert "".join(pieces) == text
    assert pieces[:2] == ["A b c. ", "D e f. "]
    assert all(word_count(piece) <= 4 for piece in pieces)
    # The over-long sentence was cut at its clause boundary first.
    assert any(piece.endswith("p, ") for piece in pieces)


def test_text_without_spaces_is_cut_by_characters():
    text = "x" * 50
    pieces = segment_passage(text, len, 8)
    assert "".join(pieces) == text
    assert all(len(piece) <= 8 for piece in pieces)


def test_joiner_knows_unspaced_scripts():
    assert joiner("zho") == "" and joiner("tha") == "" and joiner("swh") == " "


adversarial_text = st.text(
    alphabet=st.one_of(
        st.characters(),  # any code point, control characters included
        st.sampled_from([*".!?。！？।။؟۔\n\r\t \"'«»”)", "\u200f", "\u202e", "\u2028"]),
        st.sampled_from(list("שלוםمرحباमेरा你好abc")),  # RTL and mixed scripts
    ),
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(adversarial_text)
def test_split_sentences_is_lossless(text):
    pieces = split_sentences(text)
    assert "".join(pieces) == text
    assert all(pieces)


@settings(max_examples=200, deadline=None)
@given(adversarial_text, st.integers(min_value=1, max_value=20))
def test_segment_passage_is_lossless_and_fits(text, limit):
    pieces = segment_passage(text, len, limit)
    assert "".join(pieces) == text
    assert all(len(piece) <= limit for piece in pieces)
    if len(text) <= limit:
        assert pieces == [text]


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=200, max_value=3000))
def test_very_long_text(limit, words):
    text = " ".join(f"word{i}" + ("." if i % 17 == 0 else "") for i in range(words))
    pieces = segment_passage(text, word_count, limit)
    assert "".join(pieces) == text
    assert all(word_count(piece) <= limit for piece in pieces)
