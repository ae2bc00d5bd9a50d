"""A decoder-only LM (Gemma, Llama, Qwen...) that translates with a prompt: a :class:`Translator`.

Each sentence-sized piece goes into the prompt template (:mod:`flare_xlt.translate.prompt`,
default :data:`~flare_xlt.translate.prompt.DEFAULT_PROMPT`) with the languages' English
names from the registry. Decoding is greedy and a row stops at its first newline or EOS;
the translation is the generated text before them, stripped. Prompts are left-padded
into batches, so the new tokens of every row start at the same column.

Each piece may generate at most ``min(max_new_tokens, EXTRA_NEW_TOKENS +
NEW_TOKENS_PER_INPUT_TOKEN * its tokens)`` tokens: enough for a translation into a
language that needs more tokens than the source, not enough to ramble on for the cap
when the model never ends the line. A batch generates up to its largest limit and cuts
each row to its own, so a piece's translation does not depend on its batch.

Line breaks inside a text end a piece (the prompt holds one line of source text), so
they become sentence breaks in the translation. Sentence splitting, batching and
restoring the order are :class:`~flare_xlt.translate.batched.BatchedTranslator`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import torch
from torch import Tensor
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase, StoppingCriteriaList

from flare_xlt.errors import FlareError
from flare_xlt.generation import NewlineStop, first_line, newline_token_ids
from flare_xlt.languages import resolve_language
from flare_xlt.translate.base import ModelLanguage
from flare_xlt.translate.batched import BatchedTranslator, require_positive
from flare_xlt.translate.prompt import DEFAULT_PROMPT, check_prompt, render_prompt

NEW_TOKENS_PER_INPUT_TOKEN = 2
EXTRA_NEW_TOKENS = 8


class HFCausalLMTranslator(BatchedTranslator):
    """A transformers causal LM that translates with a prompt, greedily, one line per piece.

    Args:
        model: an ``AutoModelForCausalLM``-style model.
        tokenizer: its tokenizer (it must have an EOS token).
        prompt: the template, with ``{source}``, ``{target}`` and ``{text}``.
        max_new_tokens: the cap of each piece's generation limit.
        options: ``model_id``, ``revision``, ``batch_size``, ``max_input_tokens`` and
            ``progress`` of :class:`~flare_xlt.translate.batched.BatchedTranslator`.
    """

    auto_model_class = AutoModelForCausalLM

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        prompt: str = DEFAULT_PROMPT,
        max_new_tokens: int = 256,
        **options: Any,
    ) -> None:
        require_positive(max_new_tokens=max_new_tokens)
        super().__init__(model, tokenizer, **options)
        self.prompt = check_prompt(prompt)
        self.max_new_tokens = max_new_tokens
        if tokenizer.eos_token_id is None:
            raise FlareError(f"the tokenizer of {self.model_id!r} has no EOS token to stop at")
        self._eos_id = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self._pad_id = self._eos_id if pad is None else pad

    @property
    def settings(self) -> Mapping[str, Any]:
        """Settings that change the output: the backend and the prompt among them."""
        return {
            "backend": "llm",
            "prompt": self.prompt,
            "decoding": "greedy",
            "max_input_tokens": self.max_input_tokens,
            "max_new_tokens": self.max_new_tokens,
            "new_tokens_per_input_token": NEW_TOKENS_PER_INPUT_TOKEN,
            "extra_new_tokens": EXTRA_NEW_TOKENS,
        }

    def model_language(self, code: str) -> ModelLanguage:
        """The registry language of ``code``; its English name is what the prompt says."""
        language = resolve_language(code)
        return ModelLanguage(code, language.iso639_3, language.name)

    def new_token_limit(self, input_tokens: int) -> int:
        """How many tokens a piece of ``input_tokens`` tokens may generate."""
        proportional = EXTRA_NEW_TOKENS + NEW_TOKENS_PER_INPUT_TOKEN * input_tokens
        return min(self.max_new_tokens, proportional)

    def _segments(self, text: str) -> list[str]:
        """The pieces of each line of ``text`` (a prompt holds one line of source text)."""
        pieces = []
        for line in text.splitlines():
            pieces += super()._segments(line)
        return pieces

    @cached_property
    def _newline_ids(self) -> Tensor:
        """``[N]`` ids of the tokens holding a newline (computed once)."""
        return newline_token_ids(self.tokenizer)

    def _translate_batch(
        self, pieces: list[str], source: ModelLanguage, target: ModelLanguage
    ) -> list[str]:
        prompts = [render_prompt(self.prompt, source.token, target.token, p) for p in pieces]
        input_ids, mask = left_padded(self.tokenizer(prompts)["input_ids"], self._pad_id)
        limits = [self.new_token_limit(self.count_tokens(piece)) for piece in pieces]
        device = self.model.device
        with torch.inference_mode():
            generated = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                do_sample=False,
                num_beams=1,
                max_new_tokens=max(limits),
                eos_token_id=self._eos_id,
                pad_token_id=self._pad_id,
                stopping_criteria=StoppingCriteriaList([NewlineStop(self._newline_ids.to(device))]),
            )  # [B, T + new]
        rows = generated[:, input_ids.shape[1] :].tolist()
        return [
            completion(row[:limit], self.tokenizer, self._eos_id)
            for row, limit in zip(rows, limits, strict=True)
        ]


def left_padded(rows: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """``rows`` of token ids -> ``[B, T]`` ids and attention mask, padded on the left."""
    width = max(len(row) for row in rows)
    ids = torch.tensor([[pad_id] * (width - len(row)) + row for row in rows])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
    return ids, mask


def completion(ids: list[int], tokenizer: PreTrainedTokenizerBase, eos_id: int) -> str:
    """The translation in a row's new token ids: the text before EOS and the first newline."""
    if eos_id in ids:
        ids = ids[: ids.index(eos_id)]
    return first_line(tokenizer.decode(ids, skip_special_tokens=True))
