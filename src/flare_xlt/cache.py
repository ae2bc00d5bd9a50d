"""Reusable source representations, computed once per example.

Both the FLARE source pass (a frozen stage-1 model with the adapter disabled)
and the FLARE-MT latent encoder (frozen) are deterministic functions of the
example, so their outputs can be computed in the first epoch and reused after.
Each example is stored *packed*: only its real tokens, in order, per distinct
tensor. Packing is exact for every alignment: the source pass itself runs on
packed input, and ``alignment="position"`` maps its raw padded positions onto
the packed tokens (:class:`~flare_xlt.fusion_context.SourceBatch` ``padded_mask``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from flare_xlt.errors import FlareError
from flare_xlt.fusion_context import SourceBatch
from flare_xlt.records import check_record, write_record

# packed tensors [n, D], key -> slot, and the n source token ids they were computed from
Entry = tuple[list[Tensor], dict[str, int], Tensor]
PRODUCER_FILE = "producer.json"
TOKENS = "source_token_ids"  # the safetensors key of an entry's token ids


class SourceCache:
    """Per-example store of source states, in memory or in a directory.

    Args:
        directory: where to keep one ``.safetensors`` file per example; None keeps
            everything in host memory (never on the accelerator, where it would grow
            by one ``[n, D]`` tensor per example and fused layer until it ran out).
        dtype: storage dtype (e.g. ``torch.bfloat16`` halves the footprint); ``load``
            casts states to the dtype its caller computes them in.
    """

    def __init__(self, directory: str | Path | None = None, dtype: torch.dtype | None = None):
        self.directory = Path(directory) if directory is not None else None
        self.dtype = dtype
        self._memory: dict[str, Entry] = {}
        self._producer: dict | None = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def bind(self, producer: dict) -> None:
        """Tie the cache to the source pass that fills it; FlareError if it holds another's.

        ``producer`` (JSON-native) describes that pass: the model or latent encoder, the
        source representation, layer offset and adapted modules. A directory keeps it in
        ``producer.json``, so a later run with another model cannot read stale states.
        """
        if producer == self._producer:
            return
        if self._producer is not None:
            raise FlareError("this SourceCache holds another source pass's states; use a new one")
        if self.directory is not None:
            path = self.directory / PRODUCER_FILE
            if not path.is_file():
                if len(self):
                    raise FlareError(
                        f"{self.directory} holds source states but no {PRODUCER_FILE}, so what "
                        "computed them is unknown; use another directory or delete it"
                    )
                write_record(path, "source_cache", producer)
            else:
                check_record(
                    _read_json_object(path, fix=f"delete {self.directory}"),
                    producer,
                    self.directory,
                    "use another directory or delete it",
                    kind="source_cache",
                    problem="caches another source pass",
                    old_fix=f"delete {self.directory} to compute its states again",
                )
        self._producer = producer

    def __len__(self) -> int:
        if self.directory is None:
            return len(self._memory)
        return sum(1 for _ in self.directory.glob("*/*.safetensors"))

    def load(
        self,
        keys: Sequence[str],
        tokens: Sequence[Tensor],
        dtype: torch.dtype,
        device: torch.device,
    ) -> SourceBatch | None:
        """The batch for ``keys`` (``B`` of them), or None if any is missing.

        Args:
            tokens: each example's real source token ids (``B`` tensors ``[n_b]``); an
                entry computed from other tokens (a changed translation, tokenizer or
                ``max_length``) is refused rather than served.

        Returns:
            states ``[B, S', D]`` per source key, cast to ``dtype`` on ``device``, and mask
            ``[B, S']``: right-padded, real tokens first, ``S'`` the longest example's length.
        """
        entries = []
        for row, key in enumerate(keys):
            entry = self._read(key)
            if entry is None:
                return None
            if not torch.equal(entry[2], tokens[row].cpu()):
                where = self.directory or "this in-memory cache"
                raise FlareError(
                    f"source cache entry {key!r} in {where} was computed from other source "
                    "tokens (a changed translation, tokenizer or max_length?); use a new cache"
                )
            entries.append(entry)
        return _unpack(entries, dtype, device)

    def store(self, keys: Sequence[str], batch: SourceBatch, tokens: Sequence[Tensor]) -> None:
        """Store each example of ``batch`` under its key (``keys`` has ``B`` entries).

        ``batch`` holds states ``[B, S, D]`` per source key and a mask ``[B, S]`` (any
        padding side), and ``tokens`` each example's ``n_b`` real token ids; example ``b``
        is stored packed, as ``[n_b, D]`` tensors and its ids, on the CPU, cast to the
        cache's ``dtype`` if it has one.
        """
        if len(keys) != batch.mask.shape[0]:
            raise FlareError(
                f"cache_keys has {len(keys)} entries for a batch of {batch.mask.shape[0]} examples"
            )
        tensors, slots = batch.unique_states()
        real = batch.mask.bool()
        for row, key in enumerate(keys):
            packed = [t[row, real[row]].detach().to("cpu", self.dtype or t.dtype) for t in tensors]
            self._write(key, (packed, slots, tokens[row].cpu()))

    def _read(self, key: str) -> Entry | None:
        if self.directory is None:
            return self._memory.get(key)
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            data = load_file(str(path))
        except Exception as err:  # a torn or foreign file must not crash training obscurely
            raise FlareError(f"source cache file {path} is unreadable ({err}); delete it") from None
        if TOKENS not in data:
            raise FlareError(
                f"source cache file {path} was written by an older flare-xlt; delete "
                f"{self.directory}"
            )
        tensors = [data[f"slot{i}"] for i in range(len(data) - 1)]
        return tensors, _read_slots(path), data[TOKENS]

    def _write(self, key: str, entry: Entry) -> None:
        if self.directory is None:
            self._memory[key] = entry
            return
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tensors, slots, tokens = entry
        tmp = path.with_name(path.name + ".tmp")
        path.with_suffix(".json").write_text(json.dumps(slots))
        payload = {f"slot{i}": t.contiguous() for i, t in enumerate(tensors)}
        save_file({**payload, TOKENS: tokens.contiguous()}, str(tmp))
        os.replace(tmp, path)  # the tensor file appears only once complete

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.directory / digest[:2] / f"{digest}.safetensors"


def _read_slots(path: Path) -> dict[str, int]:
    """The key -> slot map saved beside the tensor file ``path``; FlareError if it is torn."""
    return _read_json_object(path.with_suffix(".json"), fix=f"delete it and {path}")


def _read_json_object(path: Path, fix: str) -> dict:
    """A cache file's JSON object; a one-line FlareError saying ``fix`` if it is torn."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FlareError(f"source cache file {path} is unreadable ({err}); {fix}") from None
    if not isinstance(data, dict):
        raise FlareError(f"source cache file {path} is not a JSON object; {fix}")
    return data


def _unpack(entries: list[Entry], dtype: torch.dtype, device: torch.device) -> SourceBatch:
    """Pad packed per-example entries into one right-padded :class:`SourceBatch`."""
    slots = entries[0][1]
    lengths = [tensors[0].shape[0] for tensors, _, _ in entries]
    width = max(*lengths, 1)  # a batch without any real source token still has a column
    mask = torch.zeros(len(entries), width, dtype=torch.long, device=device)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    padded = []
    for slot in range(len(entries[0][0])):
        dim = entries[0][0][slot].shape[-1]
        out = torch.zeros(len(entries), width, dim, dtype=dtype, device=device)
        for row, (tensors, _, _) in enumerate(entries):
            out[row, : lengths[row]] = tensors[slot].to(device=device, dtype=dtype)
        padded.append(out)
    return SourceBatch({key: padded[slot] for key, slot in slots.items()}, mask)
