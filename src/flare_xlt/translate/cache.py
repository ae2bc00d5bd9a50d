"""An append-only, content-addressed, crash-safe translation cache.

Each translation is stored under a key that hashes everything that determines
it: model id, revision, source and target language (as fed to the model),
decoding settings, and the SHA-256 of the source text. Changing any of them
is a cache miss, never a stale hit.

Format: JSON Lines, one object per translation (key, the fields the key is
made of, source text, translation, creation time, package version). Chosen
over SQLite because the cache is also the translation's provenance record:
it can be read, grepped, diffed, concatenated and shared with standard tools,
and it is append-only by design, so SQLite's transactions buy nothing that
``O_APPEND`` + ``fsync`` + tail repair do not give here.

Crash safety: :class:`CachedTranslator` appends each finished batch with a
single ``write`` on an ``O_APPEND`` descriptor, then ``fsync``. A process
killed at any moment loses at most the batch in flight. A partial last line
(killed mid-write, or a power loss) is truncated away with a warning when the
cache is opened and before each append (another process sharing the file may
have been killed mid-write); a bad line anywhere else means the file was
damaged by something else and raises :class:`FlareError` naming the file and
line. Every line is verified on load:
its key must match its fields and its ``text_sha256`` its source text. Writers
and the loader hold an exclusive ``flock``, so several processes may share one
cache file (POSIX only).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from flare_xlt.errors import FlareError
from flare_xlt.fileio import fsync_path
from flare_xlt.paths import flare_home
from flare_xlt.translate.base import ModelLanguage, Translator, check_outputs

logger = logging.getLogger(__name__)

_REQUIRED = ("key", "model", "revision", "src_lang", "tgt_lang", "settings", "text_sha256")


def text_sha256(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes (lone surrogates are hashed, not rejected)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def cache_key(
    model: str,
    revision: str,
    src_lang: str,
    tgt_lang: str,
    settings: Mapping[str, Any],
    text_hash: str,
) -> str:
    """The content address of one translation (hex SHA-256 of the canonical fields)."""
    fields = [model, revision, src_lang, tgt_lang, dict(settings), text_hash]
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def package_version() -> str:
    """The installed flare-xlt version, or ``"unknown"`` when running from a bare checkout."""
    try:
        return version("flare-xlt")
    except PackageNotFoundError:
        return "unknown"


def default_cache_path(model_id: str) -> Path:
    """``<flare_home>/translation-cache/<model id, slugged>.jsonl``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", model_id).strip("-") or "model"
    return flare_home() / "translation-cache" / f"{slug}.jsonl"


@dataclass(frozen=True)
class CacheEntry:
    """One cached translation and its provenance (one JSONL line)."""

    key: str
    model: str
    revision: str
    src_lang: str
    tgt_lang: str
    settings: dict[str, Any]
    text_sha256: str
    source: str
    translation: str
    created: str
    flare_xlt: str

    def to_line(self) -> bytes:
        """The entry as one UTF-8 JSON line (non-encodable characters are escaped)."""
        record = asdict(self)
        try:
            text = json.dumps(record, ensure_ascii=False)
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: fall back to \\u escapes
            data = json.dumps(record, ensure_ascii=True).encode("ascii")
        return data + b"\n"


class TranslationCache:
    """A JSONL translation cache file, loaded (and repaired if needed) on construction.

    Args:
        path: the cache file; created (with its directory) on first append.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._translations: dict[str, str] = {}
        self._load()

    def __len__(self) -> int:
        return len(self._translations)

    def __contains__(self, key: object) -> bool:
        return key in self._translations

    def get(self, key: str) -> str | None:
        """The cached translation for ``key``, or None."""
        return self._translations.get(key)

    def append(self, entries: Sequence[CacheEntry]) -> None:
        """Durably append ``entries``: one write, then flush and fsync."""
        if not entries:
            return
        data = b"".join(entry.to_line() for entry in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            with _locked(fd):
                self._drop_torn_tail(fd)
                written = os.write(fd, data)
                while written < len(data):  # only on exotic file systems
                    written += os.write(fd, data[written:])
                os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_path(self.path.parent)
        for entry in entries:
            self._translations[entry.key] = entry.translation

    def _drop_torn_tail(self, fd: int) -> None:
        """Cut a partial last line off the file (a sharing writer killed mid-write).

        Called under the lock, so no live writer is mid-write: an unterminated tail
        can only be left by a dead one. Appending after it would glue a good batch
        onto the torn line and lose it (or corrupt the file) at the next load.
        """
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        end, good_end = size, 0
        while end > 0:
            start = max(0, end - 65536)
            newline = os.pread(fd, end - start, start).rfind(b"\n")
            if newline >= 0:
                good_end = start + newline + 1
                break
            end = start
        logger.warning(
            "translation cache %s: removing an incomplete last line (a writer was killed "
            "mid-write?)",
            self.path,
        )
        os.ftruncate(fd, good_end)

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "r+b") as handle, _locked(handle.fileno()):
            *complete, tail = handle.read().split(b"\n")  # tail is b"" after a final newline
            offset = 0
            for number, line in enumerate(complete, start=1):
                record = _parse(line)
                if record is None:
                    if number == len(complete) and not tail:
                        self._repair(handle, offset, number)
                        return
                    raise FlareError(
                        f"translation cache {self.path} is corrupt at line {number}; "
                        "remove or fix that line (or the file) and rerun"
                    )
                self._translations[record["key"]] = record["translation"]
                offset += len(line) + 1
            if tail:
                self._repair(handle, offset, len(complete) + 1)

    def _repair(self, handle: Any, good_end: int, number: int) -> None:
        logger.warning(
            "translation cache %s: last line %d is incomplete or corrupt (interrupted write?); "
            "removing it",
            self.path,
            number,
        )
        handle.truncate(good_end)
        handle.flush()
        os.fsync(handle.fileno())


def _parse(line: bytes) -> dict[str, Any] | None:
    """A verified cache record, or None if the line is not one."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not all(k in record for k in _REQUIRED):
        return None
    if not isinstance(record.get("source"), str) or not isinstance(record.get("translation"), str):
        return None
    if (
        not isinstance(record["settings"], dict)
        or text_sha256(record["source"]) != record["text_sha256"]
    ):
        return None
    expected = cache_key(
        record["model"],
        record["revision"],
        record["src_lang"],
        record["tgt_lang"],
        record["settings"],
        record["text_sha256"],
    )
    return record if expected == record["key"] else None


@contextmanager
def _locked(fd: int):
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class CachedTranslator:
    """A :class:`Translator` that serves cached translations and caches new ones.

    Only texts missing from the cache (deduplicated) reach the wrapped
    translator, in chunks of ``commit_every``; each finished chunk is appended
    to the cache durably before the next starts, so an interrupted run resumes
    where it stopped.

    Attributes:
        hits: texts served from the cache so far (duplicates within a call count once).
        translated: texts sent to the wrapped translator so far.
    """

    def __init__(
        self, translator: Translator, cache: TranslationCache, *, commit_every: int = 256
    ) -> None:
        if commit_every < 1:
            raise FlareError(f"commit_every must be at least 1, got {commit_every}")
        self.translator = translator
        self.cache = cache
        self.commit_every = commit_every
        self.hits = 0
        self.translated = 0

    @property
    def model_id(self) -> str:
        """The wrapped translator's model id."""
        return self.translator.model_id

    @property
    def revision(self) -> str:
        """The wrapped translator's revision."""
        return self.translator.revision

    @property
    def settings(self) -> Mapping[str, Any]:
        """The wrapped translator's settings."""
        return self.translator.settings

    def model_language(self, code: str) -> ModelLanguage:
        """The wrapped translator's language mapping."""
        return self.translator.model_language(code)

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        """Translate ``texts``, calling the wrapped translator only for uncached ones."""
        source = self.model_language(src_lang).cache_code
        target = self.model_language(tgt_lang).cache_code
        settings = dict(self.settings)
        keys = {
            text: cache_key(
                self.model_id, self.revision, source, target, settings, text_sha256(text)
            )
            for text in dict.fromkeys(texts)
        }
        found = {text: self.cache.get(key) for text, key in keys.items()}
        missing = [text for text, translation in found.items() if translation is None]
        self.hits += len(found) - len(missing)
        stamp = package_version()
        for start in range(0, len(missing), self.commit_every):
            chunk = missing[start : start + self.commit_every]
            outputs = check_outputs(
                chunk, self.translator.translate(chunk, src_lang, tgt_lang), self.model_id
            )
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            entries = [
                CacheEntry(
                    key=keys[text],
                    model=self.model_id,
                    revision=self.revision,
                    src_lang=source,
                    tgt_lang=target,
                    settings=settings,
                    text_sha256=text_sha256(text),
                    source=text,
                    translation=output,
                    created=created,
                    flare_xlt=stamp,
                )
                for text, output in zip(chunk, outputs, strict=True)
            ]
            self.cache.append(entries)
            found.update(zip(chunk, outputs, strict=True))
            self.translated += len(chunk)
        return [found[text] for text in texts]
