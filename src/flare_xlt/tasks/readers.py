"""Low-level readers that keep the line each record came from.

CSV is read strictly (a stray quote is an error, not silently merged text),
with a UTF-8 byte-order mark tolerated and no field-size limit. The XNLI
``.tsv`` files contain unbalanced quotes inside sentences and are read with
``csv.QUOTE_NONE``. Problems with the whole file (missing, empty, missing
columns, broken quoting) raise :class:`DataFileError`; a row with the wrong
number of fields goes to :class:`Issues` like any other bad row.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flare_xlt.tasks.report import DataFileError, Issues, RowError

_NO_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class Record:
    """One data row: its values by column name and the line it starts on (1-based)."""

    line: int
    values: dict[str, Any]

    @property
    def location(self) -> str:
        return f"line {self.line}"


def file_error(
    path: Path | str, location: str, message: str, field: str | None = None
) -> DataFileError:
    """A :class:`DataFileError` for a problem with a whole file."""
    return DataFileError(RowError(str(path), location, field, message))


def require_file(path: Path) -> Path:
    """``path`` if it is a file, else a :class:`DataFileError` saying it is missing."""
    if not path.is_file():
        raise file_error(path, "file", "file not found")
    return path


@contextlib.contextmanager
def _unlimited_fields() -> Iterator[None]:
    previous = csv.field_size_limit(_NO_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def read_delimited(
    path: Path,
    required: Sequence[str],
    issues: Issues,
    *,
    delimiter: str = ",",
    quote_none: bool = False,
) -> tuple[list[Record], list[str]]:
    """Read a CSV/TSV file with a header line; returns the records and the header.

    Raises :class:`DataFileError` for a missing or empty file, missing or
    duplicate columns and broken quoting. Blank lines are not rows and are
    ignored; rows with the wrong number of fields are reported to ``issues``.
    """
    require_file(path)
    quoting = csv.QUOTE_NONE if quote_none else csv.QUOTE_MINIMAL
    records: list[Record] = []
    start = 1  # the line the record being read starts on
    with _unlimited_fields(), path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting, strict=not quote_none)
        try:
            header = next(reader, None)
            if header is None:
                raise file_error(path, "line 1", "empty file (expected a header line)")
            _check_header(path, header, required)
            start = reader.line_num + 1
            for row in reader:
                if row and len(row) != len(header):
                    issues.row(
                        path,
                        f"line {start}",
                        None,
                        f"expected {len(header)} fields ({', '.join(header)}), found {len(row)}",
                    )
                elif row:
                    records.append(Record(start, dict(zip(header, row, strict=True))))
                start = reader.line_num + 1
        except csv.Error as error:
            opened = None if quote_none else _unclosed_quote_line(path, start, delimiter)
            if opened is not None:
                message = "malformed CSV: a quoted field opened on this line is never closed"
                raise file_error(path, f"line {opened}", message) from None
            raise file_error(path, f"line {reader.line_num}", f"malformed CSV: {error}") from None
        except UnicodeDecodeError as error:
            raise file_error(path, "file", f"not UTF-8 text: {error}") from None
    return records, header


def _unclosed_quote_line(path: Path, first_line: int, delimiter: str) -> int | None:
    """The line on which a quoted field left open at the end of ``path`` opened, if one is.

    Reads the CSV as the csv module does, from ``first_line`` (where the record that
    failed starts): a quote opens a field only at the field's start, and a doubled quote
    inside a quoted field is a literal quote.
    """
    state, opened = "field_start", None
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if number < first_line:
                continue
            for char in line:
                if state == "quoted":
                    state = "after_quote" if char == '"' else "quoted"
                elif state == "after_quote" and char == '"':
                    state = "quoted"  # a doubled quote: the field goes on
                elif state == "field_start" and char == '"':
                    state, opened = "quoted", number
                elif char == delimiter or char in "\r\n":
                    state = "field_start"
                else:
                    state = "unquoted"
    return opened if state == "quoted" else None


def _check_header(path: Path, header: list[str], required: Sequence[str]) -> None:
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise file_error(path, "line 1", f"duplicate columns: {', '.join(duplicates)}")
    missing = [name for name in required if name not in header]
    if missing:
        raise file_error(
            path,
            "line 1",
            f"missing column(s) {', '.join(missing)}; found {', '.join(header) or 'none'}",
            field=missing[0],
        )


def read_jsonl(path: Path, issues: Issues) -> list[Record]:
    """Read one JSON object per line; malformed lines and non-objects go to ``issues``.

    Blank lines are not rows and are ignored.
    """
    require_file(path)
    records: list[Record] = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    issues.row(path, f"line {number}", None, f"malformed JSON: {error.msg}")
                    continue
                if not isinstance(value, dict):
                    issues.row(path, f"line {number}", None, "expected a JSON object")
                    continue
                records.append(Record(number, value))
    except UnicodeDecodeError as error:
        raise file_error(path, "file", f"not UTF-8 text: {error}") from None
    return records


def read_json(path: Path) -> Any:
    """Parse a whole JSON file; malformed JSON raises :class:`DataFileError` with its line."""
    require_file(path)
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise file_error(path, f"line {error.lineno}", f"malformed JSON: {error.msg}") from None
    except UnicodeDecodeError as error:
        raise file_error(path, "file", f"not UTF-8 text: {error}") from None


class BadField(Exception):
    """A field of one record is missing or invalid; loaders turn it into a row error."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def get_id(values: dict[str, Any], first_line: dict) -> str:
    """The record's ``id`` as a non-blank string (an integer id is read as its digits);
    :class:`BadField` when it is missing or already in ``first_line`` (id -> its line)."""
    value = values.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise BadField("id", f"missing or invalid id {value!r}")
    if value in first_line:
        raise BadField("id", f"duplicate id {value!r} (first on line {first_line[value]})")
    return value


def get_text(values: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    """The string value of field ``name``; :class:`BadField` if missing, not a string or blank."""
    if name not in values or values[name] is None:
        raise BadField(name, "missing value")
    value = values[name]
    if not isinstance(value, str):
        raise BadField(name, f"expected text, found {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise BadField(name, "empty text")
    return value
