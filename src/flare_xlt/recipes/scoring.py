"""Classification logits, loss and batched prediction, for decoder LLMs and encoders.

A decoder LLM classifies by scoring the label words' first tokens at the answer
position (the last prompt token, inputs are left-padded), so only one position's
logits are computed (``logits_to_keep=1``), never the full vocabulary at every
position. An encoder uses its sequence-classification head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from flare_xlt.baselines.xmixup import XMixupModel, XMixupOutput
from flare_xlt.model import FlareModel

MODEL_KEYS = ("input_ids", "attention_mask")
FLARE_KEYS = (
    "source_input_ids",
    "source_attention_mask",
    "latent_input_ids",
    "latent_attention_mask",
    "cache_keys",
)


@dataclass
class ClassificationScorer:
    """Turns a batch into ``[B, C]`` class logits.

    Attributes:
        num_classes: ``C``, the task's number of classes (``len(spec.label_names)``);
            macro-F1 averages over all of them, also over one that no example has.
        verbalizer_ids: for a causal LM or an encoder-decoder, the token id scored for
            each class; None for a model with a classification head.
        seq2seq: the model is an encoder-decoder: the label words are scored at the
            decoder's first step (its input is the decoder start token).
    """

    num_classes: int
    verbalizer_ids: list[int] | None = None
    seq2seq: bool = False
    metric_key = None  # the task metric's own name is the number to report

    def references(self, features: Sequence[dict]) -> list[int]:
        """The gold class of each feature."""
        return [f["labels"] for f in features]

    def logits(self, model: nn.Module, batch: dict) -> Tensor:
        """Class logits ``[B, C]``."""
        return self._classes(self._forward(model, batch).logits)

    def loss(self, model: nn.Module, batch: dict) -> Tensor:
        """Cross-entropy over the classes (the label words, for a causal LM).

        X-Mixup also learns from its English pass (:func:`~flare_xlt.baselines.xmixup.xmixup_loss`).
        """
        output = self._forward(model, batch)
        logits = self._classes(output.logits)
        if isinstance(output, XMixupOutput):
            source_logits = self._classes(output.source_logits)
            return unwrap_model(model).loss(logits, source_logits, batch["labels"])
        return nn.functional.cross_entropy(logits, batch["labels"])

    def _forward(self, model: nn.Module, batch: dict):
        """The model's output: for a causal LM, logits at the last position only."""
        inputs = model_inputs(model, batch)
        if self.verbalizer_ids is None:
            return model(**inputs)
        if self.seq2seq:
            return model(**inputs, decoder_input_ids=decoder_start(model, batch["input_ids"]))
        return model(**inputs, logits_to_keep=1)

    def _classes(self, logits: Tensor) -> Tensor:
        """``[B, C]`` from a head's logits, or from the LM logits ``[B, 1, V]`` (label words)."""
        if self.verbalizer_ids is None:
            return logits
        return logits[:, -1][:, self.verbalizer_ids]

    @torch.inference_mode()
    def predict(
        self,
        model: nn.Module,
        features: Sequence[dict],
        collate,
        batch_size: int = 16,
        progress: bool = True,
        description: str = "evaluating",
    ) -> list[int]:
        """Predicted class per feature, batched by similar length, in the input order."""

        def classes(batch: dict) -> list[int]:
            return self.logits(model, batch).argmax(-1).tolist()

        return predict_in_order(
            model, features, collate, classes, batch_size, progress, description
        )


def decoder_start(model: nn.Module, input_ids: Tensor) -> Tensor:
    """``[B, 1]`` decoder start tokens of an encoder-decoder ``model``, for ``[B, T]`` inputs."""
    start = unwrap_model(model).config.decoder_start_token_id
    return torch.full((input_ids.shape[0], 1), start, dtype=torch.long, device=input_ids.device)


def predict_in_order(
    model: nn.Module,
    features: Sequence[dict],
    collate,
    predict_batch,
    batch_size: int,
    progress: bool,
    description: str,
    length_key: str = "input_ids",
) -> list:
    """``predict_batch(batch) -> list`` over length-sorted batches in eval mode, in input order."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    order = sorted(range(len(features)), key=lambda i: len(features[i][length_key]))
    predictions: list = [None] * len(features)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc=description, disable=not progress, leave=False):
        chunk = order[start : start + batch_size]
        batch = to_device(collate([features[i] for i in chunk]), device)
        for i, prediction in zip(chunk, predict_batch(batch), strict=True):
            predictions[i] = prediction
    model.train(was_training)
    return predictions


def model_inputs(model: nn.Module, batch: dict) -> dict:
    """The main input, and for a FLARE or X-Mixup model its source streams and cache keys."""
    takes_source = isinstance(unwrap_model(model), (FlareModel, XMixupModel))
    keys = MODEL_KEYS + (FLARE_KEYS if takes_source else ())
    return {k: batch[k] for k in keys if k in batch}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP/FSDP wrapper (training wraps it)."""
    return getattr(model, "module", model)


def to_device(batch: dict, device: torch.device) -> dict:
    """Move the tensors of ``batch`` to ``device``; other values pass through."""
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
