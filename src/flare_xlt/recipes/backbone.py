"""Loading the backbone as a task model: decoder LLMs score label words, encoders get a head."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from flare_xlt.errors import ModelUnavailableError
from flare_xlt.models import BUILTIN_MODELS, load_backbone
from flare_xlt.models.hub import hub_options
from flare_xlt.models.loading import is_decoder_config, resolve_source
from flare_xlt.models.quantization import QuantizationArgs
from flare_xlt.recipes.features import HeadKind
from flare_xlt.tasks import TaskSpec

CLASSIFIER_HEADS = ("classifier", "pooler", "score", "qa_outputs")


def head_kind(name_or_path: str) -> HeadKind:
    """``causal_lm`` for decoder LLMs, ``seq2seq`` for encoder-decoders (T5, mT5),
    ``classifier`` for encoders."""
    if name_or_path in BUILTIN_MODELS:
        return "causal_lm" if BUILTIN_MODELS[name_or_path].kind == "decoder" else "classifier"
    source, is_hub = resolve_source(name_or_path)
    try:
        config = AutoConfig.from_pretrained(source, **(hub_options() if is_hub else {}))
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(
            f"could not read the config of {name_or_path!r}: {str(err).splitlines()[0]}"
        ) from None
    if config.is_encoder_decoder:
        return "seq2seq"
    return "causal_lm" if is_decoder_config(config) else "classifier"


def load_task_model(
    name_or_path: str,
    head: HeadKind,
    spec: TaskSpec,
    quantization: QuantizationArgs | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The backbone with its head: the LM head, or a classification / extractive-QA head."""
    num_labels = len(spec.label_names)
    if head in ("causal_lm", "seq2seq"):
        task = "causal_lm" if head == "causal_lm" else "seq2seq_lm"
        model, tokenizer = load_backbone(name_or_path, task, quantization=quantization)
    elif spec.kind == "qa":
        model, tokenizer = load_backbone(
            name_or_path, "question_answering", quantization=quantization
        )
    else:
        model, tokenizer = load_backbone(
            name_or_path,
            "sequence_classification",
            num_labels=num_labels,
            quantization=quantization,
        )
    return model.eval(), tokenizer


def head_modules(model: PreTrainedModel) -> list[str] | None:
    """Names of an encoder's task-head modules (trained in full in stage 1)."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = [head for head in CLASSIFIER_HEADS if head in names]
    return found or None
