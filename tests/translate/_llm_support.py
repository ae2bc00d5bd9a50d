"""Test support for the LLM translation backend: a tiny random Llama and a word-level tokenizer.

The tokenizer knows the words of the default prompt and of the toy sentences, and a
newline token (an added token, so the prompt's line breaks survive the whitespace
pre-tokenizer). The model's outputs are gibberish but deterministic.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as tf
from _translate_support import SPECIALS, WORDS
from tiny_models import tiny_config
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from flare_xlt.translate import HFCausalLMTranslator

PROMPT_WORDS = [
    "Translate",
    "following",
    "text",
    "English",
    "Swahili",
    "Javanese",
    "Indonesian",
    "Chinese",
]
NEWLINE = "\n"


def build_llm_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer: specials, a newline token, prompt words, toy words."""
    entries = [*SPECIALS, NEWLINE, *PROMPT_WORDS, *WORDS]
    vocab = {token: index for index, token in enumerate(entries)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_tokens([AddedToken(NEWLINE, normalized=False)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )


def build_llm(seed: int = 0) -> tf.LlamaForCausalLM:
    """A tiny random Llama over :func:`build_llm_tokenizer`'s vocabulary, in eval mode."""
    torch.manual_seed(seed)
    size = len(build_llm_tokenizer())
    config = tiny_config("llama", vocab_size=size, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return tf.LlamaForCausalLM(config).eval()


def tiny_llm_translator(**options) -> HFCausalLMTranslator:
    """An in-memory HFCausalLMTranslator over the tiny Llama (short outputs by default)."""
    options = {"max_new_tokens": 12, "model_id": "tiny-llama", **options}
    return HFCausalLMTranslator(build_llm(), build_llm_tokenizer(), **options)


def save_tiny_llm(directory: Path) -> Path:
    """Save the tiny Llama and its tokenizer as an ordinary Hugging Face directory."""
    build_llm().save_pretrained(directory)
    build_llm_tokenizer().save_pretrained(directory)
    return directory
