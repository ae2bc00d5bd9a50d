"""From QA examples to token features, for every method and both heads.

A decoder LLM answers generatively: ``input_ids`` is the prompt
``Context: {c}\\nQuestion: {q}\\nAnswer:`` followed by `` {answer}`` and EOS, and
``labels`` carries the answer and EOS tokens only (-100 elsewhere). ``prompt_ids``
is the prompt alone, what the model generates from at test time.

An encoder answers extractively: ``input_ids`` is the ``(question, context)``
pair, ``start_positions``/``end_positions`` index the gold span's first and last
token (0, the first token, when the span is not in the window), and ``offsets``
maps each answer-eligible token to its characters in ``context`` (None for the
question, special tokens and, for input fusion, the English passage).

Inputs that do not fit lose passage (context) tokens only: the question, the
template's words and the answer are never cut. Passages are tokenized as part of
the whole input (so tokens are exactly those of the untruncated text) and the
tokens lying entirely inside a passage are the ones that may be dropped; with
two passages (input fusion) the budget is shared fairly between them.

Every feature also holds ``references`` (all gold answers in the language the model
reads: the target's, or the English ones for translate-test) and ``cache_key`` (the
example id). :class:`~flare_xlt.recipes.features.Collator` pads them, as it pads the
features of classification.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, replace

from transformers import PreTrainedTokenizerBase

from flare_xlt.errors import FlareError
from flare_xlt.recipes.features import GENERATIVE, IGNORE_INDEX, HeadKind
from flare_xlt.recipes.methods import MainInput, Method
from flare_xlt.recipes.truncation import Truncations
from flare_xlt.tasks import PromptTemplate, QAExample


@dataclass
class QAFeaturizer:
    """Tokenizes QA examples for one method and one backbone.

    Attributes:
        tokenizer: the backbone's tokenizer; a fast one (character offsets are needed).
        template: prompt template with ``context`` and ``question`` fields (causal LMs).
        head: ``causal_lm`` (generative QA) or ``classifier`` (an encoder with a
            start/end span head, ``AutoModelForQuestionAnswering``).
        method: decides the main input and the extra streams.
        max_length: token limit of one side; concatenated input gets twice this
            (never more than the tokenizer's ``model_max_length``).
            For a causal LM it covers the prompt plus ``max_answer_tokens`` + EOS
            reserved for the answer, so the prompt gets the rest whatever the
            answer; a longer gold answer is kept whole (the input then exceeds it).
        latent_tokenizer: tokenizer of the FLARE-MT latent encoder.
        max_answer_tokens: answer tokens reserved in ``max_length`` (causal LM).
        truncations: how many inputs of each stream lost passage tokens to fit their
            limit (the prompt's budget, for a causal LM).

    Encoders get one window per example, the passage's start (no stride): an
    answer beyond it gets start/end 0 in training and cannot be predicted. A
    causal LM's training input instead keeps the passage window around the gold
    answer when the answer would be cut; its ``prompt_ids`` (used for
    prediction) always keep the passage's start, so the gold answer never
    influences what the model sees at test time.
    """

    tokenizer: PreTrainedTokenizerBase
    template: PromptTemplate
    head: HeadKind
    method: Method
    max_length: int = 384
    latent_tokenizer: PreTrainedTokenizerBase | None = None
    max_answer_tokens: int = 32
    truncations: Truncations = field(default_factory=Truncations, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tokenizer.is_fast:
            raise FlareError("QA featurization needs a fast tokenizer (for character offsets)")
        if self.head in GENERATIVE:
            if sorted(self.template.fields) != ["context", "question"]:
                raise FlareError(
                    f"a QA prompt template needs the fields context and question, "
                    f"not {self.template.fields}"
                )
            if self.tokenizer.eos_token_id is None:
                raise FlareError("generative QA needs a tokenizer with an EOS token")
            if self.head == "causal_lm" and self.max_length <= self.max_answer_tokens + 1:
                raise FlareError(
                    f"max_length {self.max_length} leaves no room for a prompt next to "
                    f"max_answer_tokens {self.max_answer_tokens} and EOS"
                )
        if self.method.source == "latent" and self.latent_tokenizer is None:
            raise FlareError(f"method {self.method.name!r} needs a latent encoder tokenizer")

    def __call__(self, example: QAExample) -> dict:
        separator = "\n" if self.head in GENERATIVE else " "
        main = _compose(example, self.method.main_input, separator)
        scale = 2 if self.method.main_input == "concat" else 1
        limit = min(scale * self.max_length, self.tokenizer.model_max_length)
        if self.head == "causal_lm":
            feature = self._generative(main, limit)
        elif self.head == "seq2seq":
            feature = self._seq2seq(main, limit)
        else:
            feature = self._extractive(main, limit)
        feature.update(references=self._references(example), cache_key=example.id)
        if self.method.source == "model":
            english = _compose(example, "source", separator)
            limit = min(self.max_length, self.tokenizer.model_max_length)
            if self.head in GENERATIVE:
                tokens, _ = self._prompt_tokens(english)
                limit = self._prompt_budget(limit) if self.head == "causal_lm" else limit
            else:
                tokens, _, _ = self._pair_tokens(english)
            self.truncations.add("English", len(tokens.ids), limit)
            feature["source_input_ids"] = tokens.kept_ids(limit)
        elif self.method.source == "latent":
            feature["latent_input_ids"] = self._latent_ids(example)
        return feature

    def _latent_ids(self, example: QAExample) -> list[int]:
        """The latent encoder's input: passage and question, cut to ``max_length`` tokens."""
        texts = (example.context, example.question)
        length = len(self.latent_tokenizer(*texts, verbose=False)["input_ids"])
        self.truncations.add("latent", length, self.max_length)
        return self.latent_tokenizer(
            *texts,
            truncation="longest_first",  # the passage, unless the question is longer
            max_length=self.max_length,
        )["input_ids"]

    def _references(self, example: QAExample) -> list[str]:
        """Gold answers in the language the model reads: English ones for translate-test."""
        if self.method.main_input != "source":
            return list(example.answers)
        if not example.source_answers:
            raise FlareError(
                f"example {example.id!r} has no English gold answers, which translate_test on QA "
                "scores against (mapping English answers back to the target is not supported)"
            )
        return list(example.source_answers)

    # ------------------------------------------------------------------ causal LM
    def _prompt_budget(self, max_length: int) -> int:
        """Prompt tokens allowed: ``max_length`` less the answer's reserve and EOS."""
        return max_length - self.max_answer_tokens - 1

    def _prompt_tokens(self, main: _Input) -> tuple[_Tokens, str]:
        """``main``'s untruncated prompt, tokenized with its passages located, and its text."""
        joined, starts = main.joined("\n")
        prompt, at = _render(self.template, joined, main.question)
        encoded = self.tokenizer(prompt, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        tokens = _Tokens.locate(
            encoded["input_ids"], offsets, [True] * len(offsets), prompt, main.spans(starts, at)
        )
        return tokens.with_answer(offsets, main.answer_span(starts, at)), prompt

    def _generative(self, main: _Input, max_length: int) -> dict:
        """``input_ids``/``labels`` (prompt, answer, EOS) and ``prompt_ids``, as id lists."""
        tokens, prompt = self._prompt_tokens(main)
        budget = self._prompt_budget(max_length)
        self.truncations.add("input", len(tokens.ids), budget)
        prefix = tokens.kept_ids(budget, around_answer=True)
        answer = [*self._answer_ids(prompt, main.answer), self.tokenizer.eos_token_id]
        return {
            "input_ids": prefix + answer,
            "labels": [IGNORE_INDEX] * len(prefix) + answer,
            "prompt_ids": tokens.kept_ids(budget),
        }

    def _seq2seq(self, main: _Input, max_length: int) -> dict:
        """Encoder-decoder: ``input_ids`` (the prompt, the encoder's input), ``labels`` (the
        answer and EOS, the decoder's targets) and ``prompt_ids``, as id lists."""
        tokens, _ = self._prompt_tokens(main)
        self.truncations.add("input", len(tokens.ids), max_length)
        answer = self.tokenizer(main.answer, add_special_tokens=False)["input_ids"]
        return {
            "input_ids": tokens.kept_ids(max_length, around_answer=True),
            "labels": [*answer[: self.max_answer_tokens], self.tokenizer.eos_token_id],
            "prompt_ids": tokens.kept_ids(max_length),
        }

    def _answer_ids(self, prompt: str, answer: str) -> list[int]:
        """Tokens of `` {answer}`` as they come after the (untruncated) ``prompt``."""
        encoded = self.tokenizer(f"{prompt} {answer}", return_offsets_mapping=True)
        pairs = zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
        return [token for token, (_, end) in pairs if end > len(prompt)]

    # ------------------------------------------------------------------ encoder
    def _pair_tokens(self, main: _Input) -> tuple[_Tokens, list[tuple[int, int]], str]:
        """The ``(question, passages)`` pair tokenized whole; its character offsets; the context."""
        joined, starts = main.joined(" ")
        encoded = self.tokenizer(main.question, joined, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        eligible = [sequence == 1 for sequence in encoded.sequence_ids()]
        tokens = _Tokens.locate(
            encoded["input_ids"], offsets, eligible, joined, main.spans(starts, 0)
        )
        return tokens.with_answer(offsets, main.answer_span(starts, 0)), offsets, joined

    def _extractive(self, main: _Input, max_length: int) -> dict:
        """``input_ids``, gold ``start/end_positions``, per-token ``offsets`` and ``context``."""
        tokens, offsets, joined = self._pair_tokens(main)
        self.truncations.add("input", len(tokens.ids), max_length)
        kept = tokens.keep(max_length)
        start, end = tokens.answer_positions(kept)
        answer_passage = set(tokens.passages[main.answer_passage])
        return {
            "input_ids": [tokens.ids[t] for t in kept],
            "start_positions": start,
            "end_positions": end,
            "offsets": [tuple(offsets[t]) if t in answer_passage else None for t in kept],
            "context": joined,
        }


@dataclass(frozen=True)
class _Input:
    """The text one stream is built from: passages, question, gold answer and where it is.

    Attributes:
        passages: the context passages in order (two for input fusion: English, target).
        question: the question (for input fusion: English and target joined).
        answer: the first gold answer of the passage it comes from.
        answer_at: ``(passage index, character offset)`` of ``answer``, None if unknown.
        answer_passage: index of the passage whose tokens may form a predicted span.
    """

    passages: tuple[str, ...]
    question: str
    answer: str
    answer_at: tuple[int, int] | None
    answer_passage: int = 0

    def joined(self, separator: str) -> tuple[str, list[int]]:
        """The passages joined by ``separator`` and the character offset of each."""
        starts, position = [], 0
        for passage in self.passages:
            starts.append(position)
            position += len(passage) + len(separator)
        return separator.join(self.passages), starts

    def spans(self, starts: list[int], shift: int) -> list[tuple[int, int]]:
        """Character range of each passage, its ``starts`` moved by ``shift``."""
        return [(shift + s, shift + s + len(p)) for s, p in zip(starts, self.passages, strict=True)]

    def answer_span(self, starts: list[int], shift: int) -> tuple[int, int, int] | None:
        """``(passage, start, end)`` of the answer, in the coordinates of :meth:`spans`."""
        if self.answer_at is None:
            return None
        index, offset = self.answer_at
        begin = shift + starts[index] + offset
        return index, begin, begin + len(self.answer)


def _compose(example: QAExample, main_input: MainInput, separator: str) -> _Input:
    """The text of ``main_input`` (target, English ``source``, or both ``concat``)."""
    target_answer = example.answers[0]
    target_at = _locate(example.context, target_answer, example.answer_starts[0])
    if main_input == "target":
        return _Input((example.context,), example.question, target_answer, _at(0, target_at))
    if not example.has_source:
        raise FlareError(
            f"example {example.id!r} has no English side, which this method needs; "
            "translate the data first (flare translate)"
        )
    if main_input == "source":
        answer = example.source_answers[0] if example.source_answers else target_answer
        english_at = _locate(example.source_context, answer, None)
        return _Input(
            (example.source_context,), example.source_question, answer, _at(0, english_at)
        )
    return _Input(
        (example.source_context, example.context),
        f"{example.source_question}{separator}{example.question}",
        target_answer,
        _at(1, target_at),
        answer_passage=1,
    )


def _locate(passage: str, answer: str, hint: int | None) -> int | None:
    """Character offset of ``answer`` in ``passage``: ``hint`` if it is right, else the first."""
    if hint is not None and passage[hint : hint + len(answer)] == answer:
        return hint
    found = passage.find(answer)
    return found if found >= 0 else None


def _at(passage: int, offset: int | None) -> tuple[int, int] | None:
    return None if offset is None else (passage, offset)


def _render(template: PromptTemplate, context: str, question: str) -> tuple[str, int]:
    """The prompt (trailing spaces stripped: the answer brings its own) and where the context is."""
    values = {"context": context, "question": question}
    text, context_at = "", 0
    for literal, name, _, _ in string.Formatter().parse(template.template):
        text += literal
        if name == "context":
            context_at = len(text)
        if name:
            text += values[name]
    return text.rstrip(" "), context_at


@dataclass(frozen=True)
class _Tokens:
    """A tokenized input whose passage tokens may be dropped to fit a budget.

    Attributes:
        ids: all token ids of the untruncated input.
        passages: per passage, the indices (into ``ids``) of the tokens lying
            entirely inside it; tokens that straddle a passage edge and template
            words are never dropped.
        answer: ``(passage, first, last)``: the gold answer's first and last token
            as positions in ``passages[passage]``; None if it is not located.
    """

    ids: list[int]
    passages: list[list[int]]
    answer: tuple[int, int, int] | None

    @classmethod
    def locate(
        cls,
        ids: list[int],
        offsets: list[tuple[int, int]],
        eligible: list[bool],
        text: str,
        spans: list[tuple[int, int]],
    ) -> _Tokens:
        """Find each passage's tokens from their character ``offsets`` into ``text``.

        Only ``eligible`` tokens count (those of ``text`` in a pair); special
        tokens have empty offsets and never count. ``spans`` are the passages'
        character ranges; a token's leading whitespace (a word's space, for
        SentencePiece and byte-level BPE) does not count.
        """
        starts = [s + len(text[s:e]) - len(text[s:e].lstrip()) for s, e in offsets]
        ends = [e for _, e in offsets]
        passages = [
            [t for t in range(len(ids)) if eligible[t] and lo <= starts[t] < ends[t] <= hi]
            for lo, hi in spans
        ]
        return cls(ids, passages, None)

    def with_answer(
        self, offsets: list[tuple[int, int]], span: tuple[int, int, int] | None
    ) -> _Tokens:
        """These tokens with the answer located from its ``(passage, start, end)`` characters."""
        if span is None:
            return self
        index, begin, end = span
        hits = [
            j
            for j, t in enumerate(self.passages[index])
            if offsets[t][0] < end and offsets[t][1] > begin
        ]
        return replace(self, answer=(index, hits[0], hits[-1])) if hits else self

    def keep(self, budget: int, around_answer: bool = False) -> list[int]:
        """Indices of the tokens kept within ``budget`` tokens (more if the rest alone exceed it).

        Each passage keeps a contiguous window, its start unless ``around_answer``
        and the gold answer lies beyond it, then centred on the answer.
        """
        fixed = len(self.ids) - sum(len(p) for p in self.passages)
        limits = _fair_share([len(p) for p in self.passages], budget - fixed)
        dropped: set[int] = set()
        for index, (tokens, limit) in enumerate(zip(self.passages, limits, strict=True)):
            start = 0
            if around_answer and self.answer is not None and self.answer[0] == index:
                start = _window_start(len(tokens), limit, *self.answer[1:])
            dropped.update(tokens[:start] + tokens[start + limit :])
        return [t for t in range(len(self.ids)) if t not in dropped]

    def kept_ids(self, budget: int, around_answer: bool = False) -> list[int]:
        """Token ids of :meth:`keep`."""
        return [self.ids[t] for t in self.keep(budget, around_answer)]

    def answer_positions(self, kept: list[int]) -> tuple[int, int]:
        """Positions in ``kept`` of the answer's first and last token; (0, 0) if it is cut."""
        if self.answer is None:
            return 0, 0
        index, first, last = self.answer
        position = {t: j for j, t in enumerate(kept)}
        begin, end = self.passages[index][first], self.passages[index][last]
        if begin not in position or end not in position:
            return 0, 0
        return position[begin], position[end]


def _fair_share(lengths: list[int], budget: int) -> list[int]:
    """Tokens each passage keeps: equal shares of ``budget``, what a short one leaves goes on."""
    limits = [0] * len(lengths)
    remaining = max(budget, 0)
    for rank, index in enumerate(sorted(range(len(lengths)), key=lengths.__getitem__)):
        limits[index] = min(lengths[index], remaining // (len(lengths) - rank))
        remaining -= limits[index]
    return limits


def _window_start(length: int, limit: int, first: int, last: int) -> int:
    """Start of a ``limit``-token window of ``length`` tokens that holds ``first..last``."""
    if last < limit:
        return 0
    centred = (first + last + 1 - limit) // 2
    return max(0, min(centred, length - limit))
