"""The translation cache: content addressing, resumption, crash safety, repair, round trips."""

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _translate_support import (
    CountingTranslator,
    ToyTranslator,
    save_tiny_model,
    sentences,
    tiny_translator,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_xlt.errors import FlareError
from flare_xlt.translate import (
    CachedTranslator,
    HFSeq2SeqTranslator,
    TranslationCache,
    Translator,
    cache_key,
    default_cache_path,
)

WORKER = Path(__file__).with_name("_crash_worker.py")


def reverse(text: str) -> str:
    return text[::-1]


def test_key_depends_on_every_field():
    base = ("m", "r", "eng", "swh", {"num_beams": 4}, "h")
    variants = [
        ("m2", "r", "eng", "swh", {"num_beams": 4}, "h"),
        ("m", "r2", "eng", "swh", {"num_beams": 4}, "h"),
        ("m", "r", "swh", "eng", {"num_beams": 4}, "h"),
        ("m", "r", "eng", "ind", {"num_beams": 4}, "h"),
        ("m", "r", "eng", "swh", {"num_beams": 1}, "h"),
        ("m", "r", "eng", "swh", {"num_beams": 4}, "h2"),
    ]
    assert len({cache_key(*base), *(cache_key(*v) for v in variants)}) == 7
    assert cache_key("m", "r", "eng", "swh", {"a": 1, "b": 2}, "h") == cache_key(
        "m", "r", "eng", "swh", {"b": 2, "a": 1}, "h"
    )


def test_second_run_makes_no_model_calls(tmp_path):
    path = tmp_path / "cache.jsonl"
    texts = sentences(9)
    first = CountingTranslator(tiny_translator())
    cached = CachedTranslator(first, TranslationCache(path), commit_every=4)
    assert isinstance(cached, Translator)
    out = cached.translate(texts, "en", "sw")
    assert [len(batch) for batch in first.calls] == [4, 4, 1]
    assert out == tiny_translator().translate(texts, "en", "sw")

    second = CountingTranslator(tiny_translator())
    again = CachedTranslator(second, TranslationCache(path))  # reloaded from disk
    assert again.translate(texts, "en", "sw") == out
    assert second.calls == [] and again.hits == 9

    # Only new texts are translated; duplicates in a call are translated once.
    more = [*texts[:3], "the red king .", "the red king ."]
    assert again.translate(more, "en", "sw")[:3] == out[:3]
    assert second.calls == [["the red king ."]]
    # Another direction or setting is another key.
    again.translate(texts[:2], "en", "id")
    assert len(second.calls) == 2
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 9 + 1 + 2
    record = json.loads(lines[0])
    assert record["source"] == texts[0] and record["translation"] == out[0]
    assert record["model"] == "tiny-m2m100" and record["src_lang"] == "__en__"
    assert record["tgt_lang"] == "__sw__" and record["settings"]["num_beams"] == 1


def test_fallback_language_shares_the_fallbacks_entries(tmp_path):
    cache = TranslationCache(tmp_path / "cache.jsonl")
    inner = CountingTranslator(tiny_translator(fallback_lang="id"))
    cached = CachedTranslator(inner, cache)
    indonesian = cached.translate(["the cat ."], "en", "id")
    assert cached.translate(["the cat ."], "en", "ban") == indonesian  # Balinese -> __id__
    assert len(inner.calls) == 1


def test_default_cache_path_is_under_flare_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FLARE_HOME", str(tmp_path))
    path = default_cache_path("facebook/nllb-200-distilled-600M")
    assert path == tmp_path / "translation-cache" / "facebook--nllb-200-distilled-600M.jsonl"


def fill(path: Path, n: int) -> list[str]:
    texts = sentences(n)
    CachedTranslator(ToyTranslator(), TranslationCache(path), commit_every=2).translate(
        texts, "en", "sw"
    )
    return texts


@pytest.mark.parametrize(
    "tail",
    [b'{"key": "abc", "model": "to', b"\x00\x00\x00", b'{"not": "an entry"}\n', b"garbage\n"],
    ids=["truncated", "zeros", "foreign-json", "garbage-line"],
)
def test_corrupt_last_line_is_repaired(tmp_path, caplog, tail):
    path = tmp_path / "cache.jsonl"
    texts = fill(path, 5)
    good = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(tail)
    with caplog.at_level(logging.WARNING, logger="flare_xlt.translate.cache"):
        cache = TranslationCache(path)
    assert "line 6" in caplog.text and str(path) in caplog.text
    assert path.read_bytes() == good and len(cache) == 5
    toy = ToyTranslator()
    cached = CachedTranslator(toy, cache)
    assert cached.translate([*texts, "new ."], "en", "sw")[-1] == "NEW ."
    assert toy.calls == [["new ."]]
    assert len(TranslationCache(path)) == 6


def test_append_after_a_line_torn_by_another_writer_keeps_every_batch(tmp_path, caplog):
    # Two processes share a cache; the other one was killed mid-write after this one
    # had loaded the file. This one's next batch used to be glued onto the torn line.
    path = tmp_path / "cache.jsonl"
    cached = CachedTranslator(ToyTranslator(), TranslationCache(path), commit_every=2)
    cached.translate(["one ."], "en", "sw")
    with open(path, "ab") as handle:
        handle.write(b'{"key": "0f3a", "model": "to')
    with caplog.at_level(logging.WARNING, logger="flare_xlt.translate.cache"):
        cached.translate(["two .", "three .", "four ."], "en", "sw")
    assert "incomplete last line" in caplog.text
    toy = ToyTranslator()
    again = CachedTranslator(toy, TranslationCache(path))
    texts = ["one .", "two .", "three .", "four ."]
    assert again.translate(texts, "en", "sw") == [text.upper() for text in texts]
    assert toy.calls == []


@pytest.mark.parametrize("damage", ["garbage", "tampered-source", "blank"])
def test_corruption_in_the_middle_is_an_error(tmp_path, damage):
    path = tmp_path / "cache.jsonl"
    fill(path, 4)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if damage == "garbage":
        lines[1] = "{oops\n"
    elif damage == "tampered-source":
        record = json.loads(lines[1])
        record["source"] += " (edited)"
        lines[1] = json.dumps(record) + "\n"
    else:
        lines[1] = "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(FlareError, match=f"{path}.* line 2"):
        TranslationCache(path)


adversarial_text = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=60),  # surrogates, controls
    st.text(
        alphabet=st.sampled_from(list("שלום مرحبا\u200f\u202e\"'\\\n\r\u2028\x00\x1b你好")),
        max_size=60,
    ),
    st.just(""),
    st.text(min_size=3000, max_size=5000),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(adversarial_text, max_size=8))
def test_adversarial_texts_round_trip(tmp_path, texts):
    path = tmp_path / f"cache-{os.urandom(6).hex()}.jsonl"
    out = CachedTranslator(ToyTranslator(reverse), TranslationCache(path)).translate(
        texts, "en", "sw"
    )
    assert out == [reverse(text) for text in texts]  # one output per input, in order
    toy = ToyTranslator(reverse)
    reloaded = CachedTranslator(toy, TranslationCache(path))
    assert reloaded.translate(texts, "en", "sw") == out
    assert toy.calls == []


def run_worker(model: str, cache: Path, n: int, commit_every: int, slow_batch: int):
    return subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            model,
            str(cache),
            str(n),
            str(commit_every),
            str(slow_batch),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=WORKER.parent,
    )


def wait_for(process: subprocess.Popen, prefix: str, timeout: float = 120) -> list[str]:
    deadline, lines = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith(prefix):
            return lines
    process.kill()
    raise AssertionError(f"worker never printed {prefix!r}; got {lines}")


@pytest.mark.slow
def test_sigkill_mid_run_loses_at_most_the_batch_in_flight(tmp_path):
    model = str(save_tiny_model(tmp_path / "tiny"))
    path = tmp_path / "cache.jsonl"
    worker = run_worker(model, path, n=20, commit_every=4, slow_batch=2)
    lines = wait_for(worker, "in flight")
    assert lines[-3:] == ["batch 0", "batch 1", "in flight"]
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL

    cache = TranslationCache(path)
    assert len(cache) == 8  # two committed batches; only the batch in flight was lost

    texts = sentences(20)
    counting = CountingTranslator(
        HFSeq2SeqTranslator.from_pretrained(model, num_beams=1, max_new_tokens=8)
    )
    resumed = CachedTranslator(counting, cache, commit_every=4)
    out = resumed.translate(texts, "en", "sw")
    assert counting.calls == [texts[8:12], texts[12:16], texts[16:20]]
    assert out == tiny_translator().translate(texts, "en", "sw")
    again = CountingTranslator(counting.inner)
    assert CachedTranslator(again, TranslationCache(path)).translate(texts, "en", "sw") == out
    assert again.calls == []


@pytest.mark.slow
def test_sigkill_at_a_random_moment_leaves_a_loadable_cache(tmp_path):
    path = tmp_path / "cache.jsonl"
    worker = run_worker("toy", path, n=2000, commit_every=1, slow_batch=-1)
    wait_for(worker, "batch 0")
    time.sleep(random.uniform(0.05, 0.5))
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    committed = len(TranslationCache(path))  # repaired if the kill hit a write
    assert 1 <= committed < 2000
    toy = ToyTranslator()
    texts = sentences(2000)
    out = CachedTranslator(toy, TranslationCache(path)).translate(texts, "en", "sw")
    assert out == [text.upper() for text in texts]
    assert toy.texts_translated == 2000 - committed
