"""What a load produced: the examples plus an account of every row not loaded.

Loaders never drop a row silently. A bad row (malformed, missing field, label
outside the label set, answer not in its context, no English partner, ...) is a
:class:`RowError` naming the file, the line (or JSON location) and the field.
With ``errors="raise"`` (the default) the first one raises
:class:`DataFileError`; with ``errors="skip"`` the row is left out and the
error is kept in the :class:`LoadReport`, so ``report.rows == report.loaded +
len(report.skipped)`` always holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flare_xlt.errors import FlareError

if TYPE_CHECKING:
    from flare_xlt.tasks.examples import Example
    from flare_xlt.tasks.spec import TaskSpec

ERROR_MODES = ("raise", "skip")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowError:
    """One row that could not be loaded.

    Attributes:
        file: the file (or hub dataset) the row came from.
        location: where in it: ``"line 12"`` or a JSON path such as
            ``"data[0].paragraphs[3].qas[1]"``.
        field: the offending column / key, or None for whole-row problems.
        message: what is wrong.
    """

    file: str
    location: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.location}"
        if self.field is not None:
            where += f": field {self.field!r}"
        return f"{where}: {self.message}"


class DataFileError(FlareError):
    """A data file problem; ``row_error`` says where (file, line, field)."""

    def __init__(self, row_error: RowError) -> None:
        super().__init__(str(row_error))
        self.row_error = row_error


@dataclass(frozen=True)
class LoadReport:
    """The account of one load.

    Attributes:
        files: the files (or hub datasets) read.
        loaded: how many examples were produced.
        skipped: the rows left out, each with its reason (only with ``errors="skip"``).
        notes: other facts worth knowing (how the split was cut, ignored columns,
            whitespace-only differences between aligned files, ...).
    """

    files: tuple[str, ...]
    loaded: int
    skipped: tuple[RowError, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        """Candidate rows for this split: loaded plus skipped."""
        return self.loaded + len(self.skipped)

    def summary(self) -> str:
        """One paragraph for logs and the CLI."""
        lines = [f"loaded {self.loaded} of {self.rows} rows from {', '.join(self.files)}"]
        lines += [f"skipped: {error}" for error in self.skipped]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


class Issues:
    """Collects row errors (raising the first one, or keeping them) and notes during a load."""

    def __init__(self, errors: str = "raise") -> None:
        if errors not in ERROR_MODES:
            raise FlareError(f"errors must be one of {ERROR_MODES}, not {errors!r}")
        self.mode = errors
        self.skipped: list[RowError] = []
        self.notes: list[str] = []

    def row(self, file: str | Path, location: str, field: str | None, message: str) -> None:
        """Record a bad row: raise :class:`DataFileError` or keep it, by mode."""
        error = RowError(str(file), location, field, message)
        if self.mode == "raise":
            raise DataFileError(error)
        self.skipped.append(error)

    def note(self, text: str) -> None:
        """Record a fact about the load that is not a row error."""
        self.notes.append(text)

    def report(self, files: tuple[str | Path, ...], loaded: int) -> LoadReport:
        """Freeze what was collected into a :class:`LoadReport`."""
        return LoadReport(
            files=tuple(str(f) for f in files),
            loaded=loaded,
            skipped=tuple(self.skipped),
            notes=tuple(self.notes),
        )


@dataclass(frozen=True)
class LoadedSplit:
    """One split of one task in one language, with its load report.

    Iterating, ``len`` and indexing go to ``examples``.
    """

    spec: TaskSpec
    language: str
    split: str
    examples: tuple[Example, ...]
    report: LoadReport = field(repr=False)

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]

    def log_report(self) -> None:
        """Log the report: a warning when rows were skipped, else at info level."""
        level = logging.WARNING if self.report.skipped else logging.INFO
        logger.log(
            level, "%s/%s/%s: %s", self.spec.name, self.language, self.split, self.report.summary()
        )
