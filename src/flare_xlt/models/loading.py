"""Load a backbone model and its tokenizer from a built-in name, a directory or a hub id."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from flare_xlt.errors import FlareError, ModelUnavailableError
from flare_xlt.models.hub import hub_options, hub_state
from flare_xlt.models.prepare import prepare_model
from flare_xlt.models.quantization import QuantizationArgs, quantized_device_map
from flare_xlt.models.registry import BUILTIN_MODELS

TASKS = {
    "causal_lm": AutoModelForCausalLM,
    "seq2seq_lm": AutoModelForSeq2SeqLM,
    "sequence_classification": AutoModelForSequenceClassification,
    "question_answering": AutoModelForQuestionAnswering,
    "encoder": AutoModel,
}


def load_backbone(
    name_or_path: str,
    task: str = "causal_lm",
    num_labels: int | None = None,
    dtype: torch.dtype = torch.float32,
    quantization: QuantizationArgs | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` for ``task``.

    ``name_or_path`` is a built-in name (see :func:`~flare_xlt.models.list_models`;
    converted into the cache on first use), a local HF directory, or a hub id (downloaded
    by ``from_pretrained``; with ``HF_HUB_OFFLINE=1`` only the local HF cache is used).

    Tasks: ``causal_lm`` (decoders only), ``seq2seq_lm`` (encoder-decoders: T5, mT5),
    ``sequence_classification`` (``num_labels``
    classes, default 2), ``question_answering`` and ``encoder`` (the bare model; for an
    encoder-decoder such as NLLB, its encoder stack). Heads that the checkpoint lacks are
    randomly initialised: for ``sequence_classification`` on multilingual-e5-small that
    includes BERT's pooler, which must then be trained together with the classifier (a
    frozen random pooler silently caps accuracy).

    Decoder tokenizers pad on the left, encoder tokenizers on the right; a missing pad
    token is set to EOS (else UNK) and copied into ``model.config.pad_token_id``.

    ``quantization`` loads the linear layers in 4 bits with bitsandbytes (QLoRA; CPU and
    GPU; needs the ``quantization`` extra). A directory saved from a 4-bit model carries
    its quantization in ``config.json`` and loads in 4 bits without it.
    """
    if task not in TASKS:
        raise FlareError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    if num_labels is not None and task != "sequence_classification":
        raise FlareError(f"num_labels applies to task 'sequence_classification', not {task!r}")
    source, is_hub = resolve_source(name_or_path)
    hub_kwargs = hub_options() if is_hub else {}
    try:
        config = AutoConfig.from_pretrained(source, **hub_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError) as err:  # ValueError: invalid id, config without model_type
        raise _unavailable(name_or_path, is_hub, err) from None
    decoder = is_decoder_config(config)
    if task == "causal_lm" and not decoder:
        raise FlareError(
            f"{name_or_path!r} ({config.model_type}) is not a decoder-only model; "
            "task 'causal_lm' needs one"
        )
    if num_labels is not None:
        config.num_labels = num_labels
    load_kwargs = dict(hub_kwargs)
    if quantization is not None and quantization.load_in_4bit:
        load_kwargs.update(quantization.loading_options())
    elif getattr(config, "quantization_config", None) is not None:  # a saved 4-bit model
        load_kwargs.setdefault("device_map", quantized_device_map())
    if task == "encoder" and name_or_path in BUILTIN_MODELS:
        load_kwargs.update(BUILTIN_MODELS[name_or_path].encoder_kwargs)
    model = _load_model(name_or_path, source, task, config, dtype, is_hub, load_kwargs)
    _set_padding(tokenizer, model, decoder)
    return model, tokenizer


def _load_model(
    name: str,
    source: str,
    task: str,
    config: PretrainedConfig,
    dtype: torch.dtype,
    is_hub: bool,
    load_kwargs: dict,
) -> PreTrainedModel:
    try:
        model = TASKS[task].from_pretrained(source, config=config, dtype=dtype, **load_kwargs)
    except (OSError, SafetensorError) as err:  # missing, unreachable or truncated weights
        raise _unavailable(name, is_hub, err) from None
    except ValueError as err:
        if "Unrecognized configuration class" not in str(err):
            raise
        raise FlareError(
            f"{name!r} ({config.model_type}) has no {task} model in transformers"
        ) from None
    if task == "encoder" and config.is_encoder_decoder:
        return model.get_encoder()
    return model


def resolve_source(name_or_path: str) -> tuple[str, bool]:
    """``(source for from_pretrained, whether it is a hub id)``; a one-line
    :class:`ModelUnavailableError` for a path that is not a model directory."""
    if name_or_path in BUILTIN_MODELS:
        return str(prepare_model(name_or_path, verify=False)), False
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path), False
    if path.exists():
        raise ModelUnavailableError(f"{name_or_path!r} is not a model directory")
    if looks_like_a_path(name_or_path):
        raise ModelUnavailableError(
            f"model directory {name_or_path!r} not found (built-in offline models: "
            f"{', '.join(BUILTIN_MODELS)})"
        )
    return name_or_path, True


def looks_like_a_path(name: str) -> bool:
    """A name no hub id can be (hub ids are ``name`` or ``namespace/name``)."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _unavailable(name: str, is_hub: bool, err: Exception) -> ModelUnavailableError:
    if not is_hub:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return ModelUnavailableError(f"could not load model directory {name!r}: {reason}")
    return ModelUnavailableError(
        f"could not load Hugging Face model id {name!r}{hub_state()}: offline, no network, or no "
        f"such model; built-in offline models: {', '.join(BUILTIN_MODELS)}"
    )


def is_decoder_config(config: PretrainedConfig) -> bool:
    """True for decoder-only LMs: a causal-LM head, no masked-LM head, not encoder-decoder."""
    kind = config.model_type
    return (
        not config.is_encoder_decoder
        and kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def _set_padding(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, decoder: bool) -> None:
    tokenizer.padding_side = "left" if decoder else "right"
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise FlareError("the tokenizer has no pad, EOS or UNK token to pad with")
        tokenizer.pad_token = fallback
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
