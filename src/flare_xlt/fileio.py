"""Files flare-xlt writes so that a crash leaves the old version or the new one, never half.

A file is written to a temp file in its own directory, flushed to disk and renamed over
the target (``os.replace``); a directory is filled under a temp name, every file in it
flushed, renamed into place and the rename flushed (an fsync of the parent directory).
Reading the small JSON records flare-xlt keeps beside its outputs is here too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from flare_xlt.errors import FlareError


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a flushed temp file and ``os.replace``.

    Readers never see half a file; a temp file left by a failed write is removed.
    The directory must exist. Returns ``path``.
    """
    path = Path(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomically(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` as indented JSON with :func:`write_text_atomically`."""
    return write_text_atomically(path, json.dumps(payload, indent=2) + "\n")


def write_dir_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """``write(temp_dir)`` into ``.tmp-<name>`` beside ``target``, then :func:`publish_dir` it."""
    temp = target.with_name(f".tmp-{target.name}")
    if temp.exists():
        shutil.rmtree(temp)
    temp.mkdir(parents=True)
    write(temp)
    publish_dir(temp, target)


def publish_dir(temp: Path, target: Path) -> None:
    """Flush every file of ``temp`` to disk and rename it to ``target`` (replacing it)."""
    for path in temp.rglob("*"):
        if path.is_file():
            fsync_path(path)
    fsync_path(temp)
    if target.exists():  # written again, e.g. after it was found damaged
        remove_dir_atomically(target)
    os.rename(temp, target)
    fsync_path(target.parent)  # the rename itself


def remove_dir_atomically(path: Path) -> None:
    """Delete ``path`` by renaming it to ``.tmp-removed-<name>`` first: a crash never leaves
    it half there (only the renamed remains, which whoever owns the folder cleans up)."""
    doomed = path.with_name(f".tmp-removed-{path.name}")
    if doomed.exists():
        shutil.rmtree(doomed)
    os.rename(path, doomed)
    shutil.rmtree(doomed)


def fsync_path(path: Path) -> None:
    """Flush the file or directory ``path`` to disk (a directory: the names made in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at ``path``, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_json_object(path: Path) -> dict:
    """The JSON object saved in ``path``; a one-line :class:`FlareError` naming it if malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise FlareError(f"{path} is not valid UTF-8 JSON: {err}") from None
    except json.JSONDecodeError as err:
        raise FlareError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise FlareError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data
