"""A word-level tokenizer trained in-test (no downloads), shaped like an LLM's (BOS, pad)."""

from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast


def word_tokenizer(
    texts, padding_side: str = "left", vocab_size: int = 64
) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over ``texts`` with ``<pad>``=0, ``<unk>``=1, ``<bos>``=2 prepended."""
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    special = ["<pad>", "<unk>", "<bos>"]
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=special)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        padding_side=padding_side,
    )
