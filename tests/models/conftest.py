"""Fixtures for flare_xlt.models: a synthetic E5S1 writer, tiny tokenizers, a real-model cache."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import transformers as tf
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from flare_xlt.models.e5_reader import DTYPE_F32, DTYPE_Q4_0, E5Config

TINY_E5 = E5Config(
    hidden=32, layers=2, heads=2, ffn=64, vocab=10, max_positions=16, type_vocab=2, eps=1e-12
)
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁hello", "▁world", "▁", "o", "<mask>"]
SPECIALS = {"bos": 0, "eos": 2, "pad": 1, "unk": 3}


def q4_encode(scales: np.ndarray, nibbles: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Pack Q4_0 blocks the slow, obvious way from the spec.

    scales: (n_blocks,) float16; nibbles: (n_blocks, 32) ints in [0, 16).
    Returns the raw bytes and the (n_blocks * 32,) float32 weights they encode.
    """
    raw, weights = bytearray(), []
    for scale, block in zip(scales, nibbles, strict=True):
        raw += struct.pack("<e", float(scale))
        raw += bytes(int(block[j]) | (int(block[j + 16]) << 4) for j in range(16))
        weights += [(int(q) - 8) * float(scale) for q in block]
    return bytes(raw), np.array(weights, dtype=np.float32)


@dataclass
class SyntheticE5:
    path: Path
    expected: dict[str, np.ndarray]  # E5S1 name -> flat float32 values encoded
    scores: np.ndarray


def write_e5s1(path: Path, seed: int = 0) -> SyntheticE5:
    """Write a tiny E5S1 file (TINY_E5, PIECES) with random Q4_0 matrices and f32 vectors."""
    rng = np.random.default_rng(seed)
    cfg, shapes = TINY_E5, _tiny_shapes()
    tensors, expected = [], {}
    for name, (dtype, count) in shapes.items():
        if dtype == DTYPE_Q4_0:
            scales = rng.uniform(0.01, 0.1, count // 32).astype(np.float16)
            raw, values = q4_encode(scales, rng.integers(0, 16, (count // 32, 32)))
        else:
            values = rng.normal(size=count).astype(np.float32)
            raw = values.astype("<f4").tobytes()
        tensors.append((name, dtype, count, raw))
        expected[name] = values
    scores = -np.arange(len(PIECES), dtype=np.float32) / 2
    blob = b"".join(piece.encode() for piece in PIECES)
    offsets = np.cumsum([0] + [len(piece.encode()) for piece in PIECES]).astype("<u4")
    norm = struct.pack("<IB", ord("A"), 1) + struct.pack("<I", ord("a"))
    head = b"E5S1" + struct.pack("<I", 1)
    head += struct.pack("<7i", cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.vocab,
                        cfg.max_positions, cfg.type_vocab)  # fmt: skip
    head += struct.pack("<fi", cfg.eps, 32)
    head += struct.pack("<5i", len(PIECES), *SPECIALS.values())
    head += struct.pack("<Q", len(blob)) + offsets.tobytes() + scores.astype("<f4").tobytes()
    head += blob + struct.pack("<iI", 1, len(norm)) + norm
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name, *_ in tensors)
    offset, directory, payload = len(head) + directory_size, struct.pack("<i", len(tensors)), b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, count, offset, len(raw))
        offset, payload = offset + len(raw), payload + raw
    path.write_bytes(head + directory + payload)
    return SyntheticE5(path, expected, scores)


def _tiny_shapes() -> dict[str, tuple[int, int]]:
    cfg = TINY_E5
    shapes = {
        "emb.word": (DTYPE_Q4_0, cfg.vocab * cfg.hidden),
        "emb.pos": (DTYPE_F32, cfg.max_positions * cfg.hidden),
        "emb.type": (DTYPE_F32, cfg.type_vocab * cfg.hidden),
        "emb.ln.w": (DTYPE_F32, cfg.hidden),
        "emb.ln.b": (DTYPE_F32, cfg.hidden),
    }
    sizes = {"q": cfg.hidden, "k": cfg.hidden, "v": cfg.hidden, "ao": cfg.hidden}
    sizes |= {"fi": cfg.ffn, "fo": cfg.hidden}
    fan_in = {"fo": cfg.ffn}
    for layer in range(cfg.layers):
        for short, rows in sizes.items():
            cols = fan_in.get(short, cfg.hidden)
            shapes[f"l{layer}.{short}.w"] = (DTYPE_Q4_0, rows * cols)
            shapes[f"l{layer}.{short}.b"] = (DTYPE_F32, rows)
        for norm in ("aln", "oln"):
            shapes[f"l{layer}.{norm}.w"] = (DTYPE_F32, cfg.hidden)
            shapes[f"l{layer}.{norm}.b"] = (DTYPE_F32, cfg.hidden)
    return shapes


def write_tokenizer_json(path: Path, scores: np.ndarray) -> Path:
    """An XLM-R-style unigram tokenizer.json over PIECES (ids equal piece indices)."""
    tokenizer = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(PIECES, scores, strict=True)], unk_id=3)
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.save(str(path))
    return path


def word_level_tokenizer(words: list[str], **specials: str) -> tf.PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over ``words`` (specials first), for tiny models."""
    vocab = {word: i for i, word in enumerate([*specials.values(), *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=specials.get("unk_token")))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return tf.PreTrainedTokenizerFast(tokenizer_object=backend, **specials)


@pytest.fixture
def synthetic_e5(tmp_path: Path) -> SyntheticE5:
    return write_e5s1(tmp_path / "tiny-e5.bin")


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FLARE_HOME for one test."""
    home = tmp_path / "flare-home"
    monkeypatch.setenv("FLARE_HOME", str(home))
    return home
