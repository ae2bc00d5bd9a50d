"""Subprocess for the crash-safety tests: translate through a cache, to be SIGKILLed mid-run.

Usage: python _crash_worker.py MODEL CACHE N_TEXTS COMMIT_EVERY SLOW_BATCH

MODEL is a saved tiny model directory, or ``toy`` for a fast toy translator
(1 ms per batch).
Batch number SLOW_BATCH (0-based; -1 for none) announces itself on stdout with
``in flight`` and then sleeps for a minute, so the test can kill the process
while that batch is being translated. The first three batches print
``batch <i>`` when translated (before the cache write). At the end the worker prints ``done``
and the number of texts that reached the model.
"""

import sys
import time

import torch
from _translate_support import ToyTranslator, sentences

from flare_xlt.translate import CachedTranslator, HFSeq2SeqTranslator, TranslationCache


class Announcing:
    """Wraps a translator; reports each batch on stdout and stalls on ``slow_batch``."""

    def __init__(self, inner, slow_batch):
        self.inner = inner
        self.slow_batch = slow_batch
        self.batches = 0
        self.texts = 0

    model_id = property(lambda self: self.inner.model_id)
    revision = property(lambda self: self.inner.revision)
    settings = property(lambda self: self.inner.settings)

    def model_language(self, code):
        return self.inner.model_language(code)

    def translate(self, texts, src_lang, tgt_lang):
        if self.batches == self.slow_batch:
            print("in flight", flush=True)
            time.sleep(60)
        outputs = self.inner.translate(texts, src_lang, tgt_lang)
        if self.batches < 3:  # later batches stay quiet: nobody drains the pipe after a kill
            print(f"batch {self.batches}", flush=True)
        self.batches += 1
        self.texts += len(texts)
        return outputs


def main() -> None:
    model, cache, n_texts, commit_every, slow_batch = sys.argv[1:]
    torch.set_num_threads(1)
    if model == "toy":
        inner = ToyTranslator(delay=0.001)
    else:
        inner = HFSeq2SeqTranslator.from_pretrained(model, num_beams=1, max_new_tokens=8)
    announcing = Announcing(inner, int(slow_batch))
    cached = CachedTranslator(announcing, TranslationCache(cache), commit_every=int(commit_every))
    print("started", flush=True)
    cached.translate(sentences(int(n_texts)), "en", "sw")
    print(f"done {announcing.texts}", flush=True)


if __name__ == "__main__":
    main()
