"""The output of ``flare predict``: JSON Lines in input order, resumable after a kill.

Beside ``<output>``, the record ``<output>.run.json`` says what the predictions
come from (the input file and the adapter, each with a SHA-256 of its contents;
the method, language and settings that change predictions). A rerun with other
ones is refused, so one file never mixes two runs. A rerun with the same ones
continues after the last complete line: a line torn by the kill is cut, and the
lines already there must be the predictions of the first input rows, in order.
Lines are appended in chunks, each flushed to disk before the next is computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object, sha256_file
from flare_xlt.records import check_record, write_record

logger = logging.getLogger("flare_xlt")

RECORD_SUFFIX = ".run.json"


def record_path(output: str | Path) -> Path:
    """The record of what ``output``'s predictions come from: ``<output>.run.json``."""
    output = Path(output)
    return output.with_name(output.name + RECORD_SUFFIX)


def directory_digest(path: Path) -> str:
    """SHA-256 over every file of a directory (names relative to it, and contents)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def prepare_output(
    output: Path, identity: dict, ids: Sequence[str | int], details: dict | None = None
) -> int:
    """Make ``output`` ready to append to; returns how many input rows it already holds.

    ``identity`` is recorded as the record's settings and must match on a rerun;
    ``details`` (e.g. the paths the run read) are recorded beside it for the reader, not
    compared. Refuses an output of
    another run, a file that ``flare predict`` did not write, and lines that are not the
    predictions of ``ids`` in order.
    """
    record = record_path(output)
    identity = json.loads(json.dumps(identity))  # as it reads back (tuples become lists)
    if output.is_dir():
        raise FlareError(f"output {output} is a directory; name a file, e.g. preds.jsonl")
    if record.is_file():
        check_record(
            read_json_object(record),
            identity,
            output,
            f"choose another --output, or delete {output} and {record}",
            kind="prediction",
            problem="holds predictions of another run",
        )
    elif output.is_file() and output.stat().st_size > 0:
        raise FlareError(
            f"{output} exists without {record.name}, so flare predict did not write it; "
            "choose another --output"
        )
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_record(record, "prediction", identity, **(details or {}), created=created)
    return _complete_rows(output, ids)


def _complete_rows(output: Path, ids: Sequence[str | int]) -> int:
    """The number of complete prediction lines, after cutting a torn last line."""
    if not output.is_file():
        return 0
    rows, complete_bytes = 0, 0
    with output.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break  # torn by a kill: written again
            _check_line(output, line, rows, ids)
            rows += 1
            complete_bytes += len(line)
    if complete_bytes < output.stat().st_size:
        logger.info("%s: cut a torn last line after %d complete rows", output, rows)
        os.truncate(output, complete_bytes)
    return rows


def _check_line(output: Path, line: bytes, row: int, ids: Sequence[str | int]) -> None:
    """Refuse line ``row`` (0-based) unless it is the prediction of input row ``ids[row]``."""
    try:
        identifier = json.loads(line).get("id")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        identifier = None
    if row >= len(ids) or identifier != ids[row]:
        raise FlareError(
            f"{output}: line {row + 1} is not the prediction of input row {row + 1}; "
            f"delete {output} and {record_path(output)} to predict again"
        )


def append_lines(output: Path, records: Sequence[dict]) -> None:
    """Append one JSON line per record and flush it to disk."""
    with output.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        handle.flush()
        os.fsync(handle.fileno())
