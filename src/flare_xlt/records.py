"""The run records flare-xlt keeps beside its outputs, and whether they match the current run.

Every output that a later run reuses instead of computing again carries a record of the
settings it was computed with: the English task model (``stage1.json``, kind
``"stage1"``), a grid cell (``cell.json``, ``"cell"``), a training run's checkpoints and
result (``trainer_state.json``, ``"checkpoint"``; ``result.json``, ``"training"``), a
source cache directory (``producer.json``, ``"source_cache"``) and a predictions file
(``<output>.run.json``, ``"prediction"``). Each record is::

    {"schema": RECORD_SCHEMA, "kind": ..., "settings": {...}, ...what the output holds}

:func:`write_record` writes one; :func:`check_record` refuses, in one line naming the
differing keys, a record of other settings, of another kind, or of another schema. A
current record holds every settings key, None included: nothing is left out "at its
default" for the sake of older records. Those (schema 1: no ``"schema"`` key) are refused
with the command that upgrades them, where one can (:func:`upgrade_record`, ``flare
upgrade-records DIR``: ``stage1.json`` and cell records), and otherwise a way to compute
the output again. Reading a record is :func:`flare_xlt.fileio.read_json_object`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.fileio import write_json_atomically

RECORD_SCHEMA = 2
UPGRADE_COMMAND = "flare upgrade-records"

_MISSING = object()  # a key one record lacks differs even from a None in the other

# What schema-1 records left out while it was None (settings added after the first records
# were written): an upgrade fills these in as None. Nothing else was ever left out.
_LEFT_OUT_WHEN_NONE = {
    "stage1": (("adapter", "target_modules"), ("quantization",)),
    "cell": (("adapter", "fusion_modules"), ("quantization",), ("data", "machine_english")),
}


def differing_keys(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """The keys whose values differ between a saved record and the current one.

    Nested records are compared key by key and named by dotted path (``data.max_length``).
    """
    differ = []
    for key in sorted({*saved, *current}):
        old, new = saved.get(key, _MISSING), current.get(key, _MISSING)
        if isinstance(old, dict) and isinstance(new, dict):
            differ += differing_keys(old, new, f"{prefix}{key}.")
        elif old != new:
            differ.append(f"{prefix}{key}")
    return differ


def make_record(kind: str, settings: dict, **payload) -> dict:
    """The record of an output of ``kind`` computed with ``settings`` (JSON-native)."""
    return {"schema": RECORD_SCHEMA, "kind": kind, "settings": settings, **payload}


def write_record(path: str | Path, kind: str, settings: dict, **payload) -> Path:
    """Write :func:`make_record` atomically to ``path`` (the directory must exist)."""
    return write_json_atomically(path, make_record(kind, settings, **payload))


def check_record(
    saved: dict,
    current_settings: dict,
    where: str | Path,
    fix: str,
    *,
    kind: str | None = None,
    problem: str = "was computed with other settings",
    relevant: Callable[[dict], dict] | None = None,
    show_values: bool = False,
    old_fix: str | None = None,
) -> None:
    """FlareError (one line) unless ``saved`` is a current record of ``current_settings``.

    Args:
        saved: the record as read back.
        where: what the record belongs to, named first in the message.
        fix: what to do when the settings differ, e.g. "use another output_dir".
        kind: the record's expected kind (None: not checked).
        problem: what differing settings mean there, e.g. "caches another source pass".
        relevant: applied to both settings before they are compared (keys that do not
            change the output dropped).
        show_values: name each differing key with its old and new value.
        old_fix: what to do with a record of an older schema (default: ``fix``).
    """
    check_schema(saved, where, old_fix or fix, kind)
    if kind is not None and saved.get("kind") != kind:
        raise FlareError(f"{where} holds a {saved.get('kind')!r} record, not {kind!r}; {fix}")
    old = saved.get("settings")
    if not isinstance(old, dict):
        raise FlareError(f"{where} holds a record without settings; {fix}")
    new = json.loads(json.dumps(current_settings))  # as it reads back (tuples become lists)
    if relevant is not None:
        old, new = relevant(old), relevant(new)
    changed = differing_keys(old, new)
    if not changed:
        return
    if show_values:
        changed = [f"{key}: {_lookup(old, key)} -> {_lookup(new, key)}" for key in changed]
    raise FlareError(f"{where} {problem} ({', '.join(changed)}); {fix}")


def check_schema(saved: dict, where: str | Path, fix: str, kind: str | None = None) -> None:
    """FlareError (one line) when ``saved`` was not written with :data:`RECORD_SCHEMA`."""
    schema = saved.get("schema", 1)
    if schema == RECORD_SCHEMA:
        return
    if isinstance(schema, int) and schema > RECORD_SCHEMA:
        raise FlareError(
            f"{where} was written by a newer flare-xlt (record schema {schema}, this one "
            f"reads {RECORD_SCHEMA}); upgrade flare-xlt, or {fix}"
        )
    upgrade = (
        f"run `{UPGRADE_COMMAND} DIR` on its folder, or " if kind in _LEFT_OUT_WHEN_NONE else ""
    )
    raise FlareError(
        f"{where} was written by an older flare-xlt (record schema {schema}, this one reads "
        f"{RECORD_SCHEMA}); {upgrade}{fix}"
    )


def _lookup(record: dict, dotted_key: str) -> str:
    """``record``'s value at ``a.b.c``, as repr, or ``<absent>``."""
    for part in dotted_key.split("."):
        if not isinstance(record, dict) or part not in record:
            return "<absent>"
        record = record[part]
    return repr(record)


def record_kind(path: Path) -> str | None:
    """The kind of record an upgradable file name holds (``stage1.json``, ``cell*.json``)."""
    if path.name == "stage1.json":
        return "stage1"
    if path.name == "cell.json" or (path.name.startswith("cell.") and path.suffix == ".json"):
        return "cell"
    return None


def upgrade_record(path: str | Path) -> bool:
    """Rewrite a schema-1 ``stage1.json`` or cell record at ``path`` as a current record.

    The settings schema-1 records left out while they were None are filled in as None (a
    cell without data fingerprints gets ``"data": null``, so its files are not compared);
    nothing else changes, so the output stays valid for the settings it was computed
    with. Returns False when it is current already; FlareError (one line) when it is no
    record this can upgrade.
    """
    record = upgraded(Path(path))
    if record is not None:
        write_json_atomically(path, record)
    return record is not None


def upgraded(path: Path) -> dict | None:
    """The current record :func:`upgrade_record` writes at ``path``; None if it is current."""
    kind = record_kind(path)
    refuse = f"cannot upgrade {path}"
    if kind is None:
        raise FlareError(f"{refuse}: only stage1.json and cell*.json records are upgraded")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FlareError(f"{refuse}: it is unreadable ({err})") from None
    if not isinstance(saved, dict):
        raise FlareError(f"{refuse}: it is not a JSON object")
    if saved.get("schema") == RECORD_SCHEMA:
        if saved.get("kind") != kind:
            raise FlareError(f"{refuse}: it holds a {saved.get('kind')!r} record, not {kind!r}")
        return None
    if "schema" in saved:
        raise FlareError(f"{refuse}: record schema {saved['schema']!r} is not one it knows")
    settings = saved.pop("settings", None)
    if not isinstance(settings, dict):
        raise FlareError(f"{refuse}: it holds no settings")
    if kind == "cell" and not isinstance(saved.get("results"), list):
        raise FlareError(f"{refuse}: it holds no cell results")
    for *sections, key in _LEFT_OUT_WHEN_NONE[kind]:
        section = settings
        for name in sections:
            section = section.get(name)
            if not isinstance(section, dict):
                raise FlareError(f"{refuse}: its settings lack the {name!r} section")
        section.setdefault(key, None)
    if kind == "cell":
        saved.setdefault("data", None)
    return make_record(kind, settings, **saved)


def upgrade_records(directories: Iterable[str | Path]) -> list[Path]:
    """:func:`upgrade_record` on every ``stage1.json`` and ``cell*.json`` under them.

    Returns the files rewritten. Every record is checked before any is rewritten, so one
    that cannot be upgraded leaves the folders as they were.
    """
    found = []
    for directory in map(Path, directories):
        if not directory.is_dir():
            raise FlareError(f"{directory} is not a directory")
        files = (*directory.rglob("stage1.json"), *directory.rglob("cell*.json"))
        found += sorted(p for p in files if p.is_file() and record_kind(p))
    records = {path: upgraded(path) for path in found}
    for path, record in records.items():
        if record is not None:
            write_json_atomically(path, record)
    return [path for path, record in records.items() if record is not None]
