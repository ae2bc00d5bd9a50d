"""Greedy generation that ends with the first line: what QA answers and LLM translations share.

A decoder LM asked for a one-line answer (a QA answer, a translation) stops once a row
produced a token whose text holds a newline (:class:`NewlineStop`, over the ids that
:func:`newline_token_ids` finds), and its output is the text before that newline
(:func:`first_line`).
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase, StoppingCriteria


def newline_token_ids(tokenizer: PreTrainedTokenizerBase) -> Tensor:
    """``[N]`` ids of the vocabulary's tokens whose decoded text holds a newline."""
    pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    newline = [i for i, piece in enumerate(pieces) if "\n" in piece]
    return torch.tensor(newline, dtype=torch.long)


class NewlineStop(StoppingCriteria):
    """Generation stops for a row once it produced a token holding a newline (the answer ended)."""

    def __init__(self, newline_ids: Tensor):
        self.newline_ids = newline_ids  # [N], on the device of the generated ids

    def __call__(self, input_ids: Tensor, scores: Tensor, **kwargs) -> Tensor:
        """``[B, L]`` ids so far -> ``[B]`` bool, whether each row's last token holds a newline."""
        return torch.isin(input_ids[:, -1], self.newline_ids)


def first_line(text: str) -> str:
    """A generated answer: the text before the first newline, stripped."""
    return text.split("\n", 1)[0].strip()
