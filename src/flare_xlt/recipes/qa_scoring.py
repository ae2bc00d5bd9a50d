"""QA loss and batched prediction: greedy generation (decoder LLMs) or span extraction (encoders).

A decoder LLM's loss is its language-modelling loss on the answer and EOS
tokens. Only the positions that predict a labelled token get vocabulary logits
(``logits_to_keep``), not the whole prompt: with left padding the answers sit
at the end of every row. Prediction is greedy generation from the prompt, cut
at the first newline or EOS (rows stop generating at either).

An encoder's loss is its start/end cross-entropy; prediction is the best
valid span (start <= end, inside the passage, at most ``max_new_tokens``
tokens), turned back into text with the tokens' character offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase, StoppingCriteriaList

from flare_xlt.generation import NewlineStop, first_line, newline_token_ids
from flare_xlt.model import FlareModel
from flare_xlt.recipes.features import IGNORE_INDEX, HeadKind
from flare_xlt.recipes.scoring import model_inputs, predict_in_order, unwrap_model

SOURCE_KEYS = (
    "source_input_ids",
    "source_attention_mask",
    "latent_input_ids",
    "latent_attention_mask",
)


@dataclass
class QAScorer:
    """Loss and answer strings for a batch of QA features (see :mod:`qa_features`).

    Attributes:
        head: ``causal_lm`` (generative) or ``classifier`` (extractive span head).
        tokenizer: the backbone's tokenizer (decodes generated answers; EOS and pad ids).
        max_new_tokens: longest answer in tokens: generated tokens for a causal
            LM, span length for an encoder.
    """

    head: HeadKind
    tokenizer: PreTrainedTokenizerBase
    max_new_tokens: int = 32
    metric_key: ClassVar[str] = "exact_match"

    def loss(self, model: nn.Module, batch: dict) -> Tensor:
        """Mean cross-entropy over the answer tokens (causal LM, encoder-decoder) or over
        start and end (encoder)."""
        inputs = model_inputs(model, batch)
        if self.head == "classifier":
            positions = {k: batch[k] for k in ("start_positions", "end_positions")}
            return model(**inputs, **positions).loss
        if self.head == "seq2seq":  # the answer is the decoder's; the model shifts it right
            return model(**inputs, labels=batch["labels"]).loss
        labels = batch["labels"]  # [B, T]
        if isinstance(unwrap_model(model), FlareModel):  # fuse as generate does: anchored at
            prompt = (labels == IGNORE_INDEX) & batch["attention_mask"].bool()  # the prompt end
            inputs["prompt_lengths"] = prompt.sum(dim=-1)
        length = labels.shape[1]
        first = int((labels != IGNORE_INDEX).any(0).nonzero()[0])  # earliest labelled column
        keep = min(length - first + 1, length)
        logits = model(**inputs, logits_to_keep=keep).logits  # [B, keep, V], last `keep` positions
        return nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            labels[:, length - keep + 1 :].flatten(),
            ignore_index=IGNORE_INDEX,
        )

    def references(self, features: Sequence[dict]) -> list[list[str]]:
        """The gold answers of each feature (for ``compute_metric("squad", ...)``)."""
        return [list(f["references"]) for f in features]

    @torch.inference_mode()
    def predict(
        self,
        model: nn.Module,
        features: Sequence[dict],
        collate,
        batch_size: int = 16,
        progress: bool = True,
        description: str = "evaluating",
    ) -> list[str]:
        """Predicted answer per feature, batched by similar length, in the input order."""
        model = unwrap_model(model)  # a DDP/FSDP wrapper has no generate

        def answers(batch: dict) -> list[str]:
            if self.head in ("causal_lm", "seq2seq"):
                return self._generate(model, batch)
            output = model(**model_inputs(model, batch))
            return decode_spans(output.start_logits, output.end_logits, batch, self.max_new_tokens)

        key = "prompt_ids" if self.head in ("causal_lm", "seq2seq") else "input_ids"
        return predict_in_order(
            model, features, collate, answers, batch_size, progress, description, key
        )

    @cached_property
    def _newline_ids(self) -> Tensor:
        """``[N]`` ids of the vocabulary's tokens whose text holds a newline (computed once)."""
        return newline_token_ids(self.tokenizer)

    def _generate(self, model: nn.Module, batch: dict) -> list[str]:
        """Greedy answers from the left-padded ``prompt_input_ids``."""
        prompt = batch["prompt_input_ids"]  # [B, P]
        inputs = {"input_ids": prompt, "attention_mask": batch["prompt_attention_mask"]}
        if isinstance(model, FlareModel):
            inputs.update({k: batch[k] for k in SOURCE_KEYS if k in batch})
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        newline = self._newline_ids
        output = model.generate(
            **inputs,
            do_sample=False,
            num_beams=1,
            max_new_tokens=self.max_new_tokens,
            eos_token_id=eos,
            pad_token_id=eos if pad is None else pad,
            stopping_criteria=StoppingCriteriaList([NewlineStop(newline.to(prompt.device))]),
        )  # [B, P + new] (a decoder-only model), or [B, 1 + new] (the decoder start first)
        answers = []
        for row in output[:, 1 if self.head == "seq2seq" else prompt.shape[1] :].tolist():
            row = row[: row.index(eos)] if eos in row else row
            answers.append(first_line(self.tokenizer.decode(row, skip_special_tokens=True)))
        return answers


def best_spans(start_logits: Tensor, end_logits: Tensor, valid: Tensor, max_tokens: int) -> Tensor:
    """The highest-scoring valid span of each row.

    Args:
        start_logits, end_logits: ``[B, T]``.
        valid: ``[B, T]`` bool, the positions a span may start or end at.
        max_tokens: longest span, in tokens.

    Returns:
        ``[B, 2]`` (start, end) positions, ``start <= end < start + max_tokens``;
        ``(-1, -1)`` for a row without a valid position.
    """
    length = start_logits.shape[1]
    index = torch.arange(length, device=start_logits.device)
    offset = index[None, :] - index[:, None]  # [T, T]: end - start
    allowed = (offset >= 0) & (offset < max_tokens)
    allowed = allowed[None] & valid[:, :, None] & valid[:, None, :]  # [B, T, T]
    scores = start_logits[:, :, None].float() + end_logits[:, None, :].float()
    best = scores.masked_fill(~allowed, float("-inf")).flatten(1).argmax(-1)  # [B]
    spans = torch.stack([best // length, best % length], dim=-1)
    return spans.masked_fill(~allowed.flatten(1).any(-1)[:, None], -1)


def decode_spans(
    start_logits: Tensor, end_logits: Tensor, batch: dict, max_tokens: int
) -> list[str]:
    """Answer text of each row: its best valid span, cut from ``batch["contexts"]``.

    Args:
        start_logits, end_logits: ``[B, T]`` over the columns of ``batch["input_ids"]``
            (padded on either side: ``attention_mask`` tells the real tokens).
        batch: a collated extractive batch (``attention_mask``, ``offsets``, ``contexts``).
        max_tokens: longest span, in tokens.
    """
    mask = batch["attention_mask"].bool().cpu()  # [B, T]
    columns = [row.nonzero().squeeze(-1).tolist() for row in mask]  # real columns, in order
    valid = torch.zeros_like(mask)
    for i, (real, offsets) in enumerate(zip(columns, batch["offsets"], strict=True)):
        for column, offset in zip(real, offsets, strict=True):
            valid[i, column] = offset is not None
    spans = best_spans(start_logits.cpu(), end_logits.cpu(), valid, max_tokens)
    answers = []
    for real, offsets, context, (start, end) in zip(
        columns, batch["offsets"], batch["contexts"], spans.tolist(), strict=True
    ):
        if start < 0:
            answers.append("")
            continue
        token = {column: j for j, column in enumerate(real)}
        begin, finish = offsets[token[start]][0], offsets[token[end]][1]
        answers.append(context[begin:finish].strip())
    return answers
