"""Tiny random models of several architectures, built in-test (no downloads)."""

from __future__ import annotations

import torch
import transformers as tf

VOCAB = 64

_DECODER = {
    "vocab_size": VOCAB,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "pad_token_id": 0,
}
_ENCODER = {
    **{k: v for k, v in _DECODER.items() if k != "num_key_value_heads"},
    "num_labels": 3,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}
# architecture -> (config class, settings)
TINY_CONFIGS = {
    "llama": (tf.LlamaConfig, _DECODER),
    "gemma3": (
        tf.Gemma3TextConfig,
        {**_DECODER, "num_key_value_heads": 1, "head_dim": 8, "sliding_window": 4},
    ),
    "qwen2": (tf.Qwen2Config, _DECODER),
    "bert": (tf.BertConfig, {**_ENCODER, "max_position_embeddings": 64}),
    "xlm-roberta": (
        tf.XLMRobertaConfig,
        {**_ENCODER, "max_position_embeddings": 70, "pad_token_id": 1},
    ),
}
DECODERS = ("llama", "gemma3", "qwen2")
ENCODERS = ("bert", "xlm-roberta")
ARCHITECTURES = DECODERS + ENCODERS


def tiny_config(arch: str, **overrides) -> tf.PretrainedConfig:
    """The tiny config of ``arch`` (2 layers, hidden 32), with ``overrides`` applied."""
    config_class, settings = TINY_CONFIGS[arch]
    return config_class(**{**settings, **overrides})


def tiny_model(arch: str, seed: int = 0) -> torch.nn.Module:
    """A tiny random model in eval mode: causal LM (decoders) or 3-way classifier (encoders)."""
    torch.manual_seed(seed)
    config = tiny_config(arch)
    if arch in DECODERS:
        model = tf.AutoModelForCausalLM.from_config(config)
    else:
        model = tf.AutoModelForSequenceClassification.from_config(config)
    return model.eval()


def tiny_m2m100_encoder(seed: int = 0) -> torch.nn.Module:
    """The encoder half of a tiny random M2M100 (the NLLB architecture)."""
    torch.manual_seed(seed)
    config = tf.M2M100Config(
        vocab_size=VOCAB,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    return tf.M2M100ForConditionalGeneration(config).get_encoder().eval()


def random_batch(batch: int, length: int, seed: int, pad_left: int = 0, low: int = 3):
    """Random ids ``[B, T]`` and a mask with ``pad_left`` left-padding positions in row 0."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, VOCAB, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, :pad_left] = 0
    return ids, mask


def randomize_lora_b(model, seed: int = 1) -> None:
    """Make a fresh adapter non-trivial (LoRA B starts at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


def batch_inputs(seed: int = 0, source_seed: int = 1) -> dict:
    """A FLARE batch: target ids and mask ``[2, 7]`` (row 0 left-padded by 2) and English
    ids and mask ``[2, 5]``."""
    ids, mask = random_batch(2, 7, seed, pad_left=2)
    source_ids, source_mask = random_batch(2, 5, source_seed)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "source_input_ids": source_ids,
        "source_attention_mask": source_mask,
    }


def logits(model, **inputs) -> torch.Tensor:
    return model(**inputs).logits
