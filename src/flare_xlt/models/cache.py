"""Atomic, locked, checksummed cache directories for converted models.

A converted model lives in ``<root>/<name>/`` next to a lock file ``<root>/.<name>.lock``.
A build writes into a fresh ``<root>/.<name>.tmp-*`` directory, adds the manifest
``flare_model.json`` last and renames the directory into place, so a crash at any point
leaves either the previous state or a temp directory that the next build deletes.

The manifest records the builtin name, the versions of the packages the model was
converted from, the creation date and every file's size and sha256. The cheap check
(every load) compares package versions and file sizes; the full check (``prepare`` and
``flare models verify``) also recomputes the sha256 of every file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object, sha256_file

MANIFEST_NAME = "flare_model.json"
MANIFEST_FORMAT = 1

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileRecord:
    """Size in bytes and hex sha256 of one cached file."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a cache directory was built from and what it must contain."""

    builtin: str
    packages: dict[str, str]
    files: dict[str, FileRecord]
    created: str
    format: int = MANIFEST_FORMAT


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest of ``directory``, or None if it is missing or unreadable."""
    try:
        raw = read_json_object(directory / MANIFEST_NAME)
        files = {name: FileRecord(**record) for name, record in raw.pop("files").items()}
        return Manifest(files=files, **raw)
    except (FlareError, OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_manifest(directory: Path, builtin: str, packages: dict[str, str]) -> Manifest:
    """Checksum every file under ``directory`` and write the manifest there (last)."""
    files = {
        path.relative_to(directory).as_posix(): FileRecord(path.stat().st_size, sha256_file(path))
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest = Manifest(builtin, dict(packages), files, created)
    (directory / MANIFEST_NAME).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def check_dir(
    directory: Path, builtin: str, packages: dict[str, str], full: bool = False
) -> str | None:
    """Why ``directory`` is not a usable build of ``builtin`` from ``packages``; None if it is.

    Always checks the manifest, package versions and file sizes; ``full`` also checks sha256.
    """
    if not directory.is_dir():
        return "not prepared"
    manifest = read_manifest(directory)
    if manifest is None or manifest.format != MANIFEST_FORMAT:
        return f"missing or unreadable {MANIFEST_NAME}"
    if manifest.builtin != builtin:
        return f"built for {manifest.builtin!r}, not {builtin!r}"
    if manifest.packages != packages:
        return f"built from {manifest.packages}, installed {packages}"
    for name, record in manifest.files.items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != record.size:
            return f"{name} is missing or has the wrong size"
        if full and sha256_file(path) != record.sha256:
            return f"{name} fails its sha256 check"
    return None


def build_dir(
    target: Path,
    builtin: str,
    packages: dict[str, str],
    build: Callable[[Path], None],
    full_check: bool = True,
) -> Path:
    """Return ``target``, first building it with ``build(tmp_dir)`` unless it is valid.

    The check before building is the full one when ``full_check``. A file lock (fcntl)
    serialises builds of the same target across processes; a process that waited re-checks
    and reuses what the other one built. An invalid ``target`` and stale temp directories
    are removed before building.
    """
    if not full_check and check_dir(target, builtin, packages) is None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        reason = check_dir(target, builtin, packages, full=full_check)
        if reason is None:
            return target
        if target.exists():
            logger.warning("Rebuilding %s: %s", target, reason)
        _remove_stale(target)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
        try:
            build(tmp)
            write_manifest(tmp, builtin, packages)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shareable
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _remove_stale(target: Path) -> None:
    """Delete leftover temp dirs of ``target`` and ``target`` itself (caller holds the lock)."""
    if target.exists():
        trash = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
        os.replace(target, trash / target.name)
    for stale in target.parent.glob(_tmp_prefix(target) + "*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
