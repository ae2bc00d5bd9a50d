"""A one-language sentiment task in your own JSONL files and a tiny Llama that reads it.

:func:`one_step_grid` writes the files and the model under ``root`` and returns the
overrides of a grid that trains stage 1 and stage 2 for one step each (no downloads).
"""

import json

import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config

LABELS = ["negative", "neutral", "positive"]


def sentiment_rows(size: int, english: str | None = "I like this film number {i}") -> list[dict]:
    """``size`` labelled Javanese rows; ``english`` (formatted with ``i``) is their
    ``source_text``, or None for rows without an English side."""
    rows = []
    for i in range(size):
        row = {"id": f"{i}", "target_text": f"aku seneng film iki {i}", "label": LABELS[i % 3]}
        if english is not None:
            row["source_text"] = english.format(i=i)
        rows.append(row)
    return rows


def write_jsonl(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def one_step_grid(root) -> list[str]:
    """Write ``root/data/javanese.{train,validation,test}.jsonl`` and a tiny Llama in
    ``root/llama``; the overrides of a one-step grid on them, run in ``root/run``."""
    data = root / "data"
    data.mkdir()
    for split, size in (("train", 8), ("validation", 4), ("test", 6)):
        write_jsonl(data / f"javanese.{split}.jsonl", sentiment_rows(size))
    texts = [f"I like hate this film number {i} aku seneng film iki" for i in range(8)]
    label_words = ["Sentiment: negative neutral positive"] * 50
    tokenizer = word_tokenizer([*texts, *label_words], vocab_size=120)
    torch.manual_seed(0)
    llama = tf.LlamaForCausalLM(tiny_config("llama", vocab_size=len(tokenizer), bos_token_id=2))
    llama.save_pretrained(root / "llama")
    tokenizer.save_pretrained(root / "llama")
    return [
        "task=my_sentiment",
        f"data.files={data}/{{language}}.{{split}}.jsonl",
        f"data.label_names=[{', '.join(LABELS)}]",
        "data.metric=macro_f1",
        f"backbone={root / 'llama'}",
        f"output_dir={root / 'run'}",
        "languages=[javanese]",
        "stage1.max_steps=1",
        "stage2.max_steps=1",
    ]
