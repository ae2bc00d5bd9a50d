"""Splitting long passages into pieces an MT model translates well.

MT models such as NLLB are trained on single sentences and degrade past ~200
tokens, and truncating silently drops text (the reference code lost the end of
TyDiQA passages that way). A passage whose token count exceeds a limit is
therefore split into sentences; a sentence that is itself too long is cut in
two, recursively, at a clause boundary, a space, or (for text without spaces)
the middle. Passages within the limit are left whole.

Every function here is lossless: the pieces concatenate to exactly the input.
Whitespace is kept with the piece it follows, so callers strip pieces before
translating and decide how to join the translations (:func:`joiner`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Sentence-final punctuation that ends a sentence only when whitespace follows
# ("3.14", "example.com" and "U.S." stay whole).
_SPACED_FINALS = ".!?…‼⁇⁈⁉"
# Sentence-final punctuation of scripts that need no following space: CJK
# full stops and marks, Devanagari/Bengali danda, Myanmar, Ethiopic, Armenian,
# Khmer, Arabic question mark and Urdu full stop.
_UNSPACED_FINALS = "。！？｡．।॥။።፧؟۔։។៕"
# Closing quotes and brackets that belong to the sentence they end.
_CLOSERS = "\"'”’»›)]}」』）】〕"
_BOUNDARY = re.compile(
    rf"[{re.escape(_SPACED_FINALS + _UNSPACED_FINALS)}]+[{re.escape(_CLOSERS)}]*\s*|\s*\n\s*"
)
# Clause boundaries preferred when a single sentence must be cut.
_CLAUSE = re.compile(r"[,;:،、，；]\s+|[、，；]")
_SPACE = re.compile(r"\s+")

# ISO 639-3 codes of languages written without spaces between words/sentences.
UNSPACED_LANGUAGES = frozenset(
    {"zho", "cmn", "yue", "wuu", "jpn", "tha", "lao", "khm", "mya", "bod", "dzo"}
)


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences; ``"".join(result) == text``, no piece is empty.

    A boundary follows sentence-final punctuation (Latin, CJK, Indic danda,
    Myanmar, Ethiopic, Arabic, ...) plus any closing quotes/brackets, or a line
    break. After Latin-style punctuation a boundary also needs whitespace and a
    next character that is not lowercase ("e.g. this" stays whole).
    """
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if end < len(text) and _ends_sentence(match.group(), text[end]):
            pieces.append(text[start:end])
            start = end
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _ends_sentence(matched: str, following: str) -> bool:
    """Whether a punctuation/newline match followed by ``following`` ends a sentence."""
    if "\n" in matched or any(ch in _UNSPACED_FINALS for ch in matched):
        return True
    return matched[-1].isspace() and not following.islower()


def segment_passage(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """Split ``text`` into pieces of at most ``max_tokens`` tokens; shorter texts stay whole.

    ``"".join(result) == text``. Pieces are cut at sentence boundaries first,
    then (for over-long sentences) at clause boundaries, spaces, or the middle.
    A single character is never cut, even if it alone exceeds the limit.
    """
    if count_tokens(text) <= max_tokens:
        return [text]
    pieces: list[str] = []
    for sentence in split_sentences(text):
        pieces.extend(_bisect_to_fit(sentence, count_tokens, max_tokens))
    return pieces


def _bisect_to_fit(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    if len(text) <= 1 or count_tokens(text) <= max_tokens:
        return [text]
    cut = _cut_point(text)
    return _bisect_to_fit(text[:cut], count_tokens, max_tokens) + _bisect_to_fit(
        text[cut:], count_tokens, max_tokens
    )


def _cut_point(text: str) -> int:
    """Where to cut ``text`` (in ``1..len(text)-1``), preferring the middle half.

    In order: a clause boundary in the middle half, a space in the middle half,
    any space, the middle character.
    """
    middle = len(text) // 2
    clauses, spaces = _cuts(_CLAUSE, text), _cuts(_SPACE, text)
    for cuts in (clauses, spaces):
        near = [c for c in cuts if len(text) // 4 <= c <= 3 * len(text) // 4]
        if near:
            return min(near, key=lambda c: abs(c - middle))
    return min(spaces, key=lambda c: abs(c - middle)) if spaces else middle


def _cuts(pattern: re.Pattern[str], text: str) -> list[int]:
    return [m.end() for m in pattern.finditer(text) if 0 < m.end() < len(text)]


def joiner(iso639_3: str) -> str:
    """The separator between translated sentences in a language: ``""`` for unspaced scripts."""
    return "" if iso639_3 in UNSPACED_LANGUAGES else " "
