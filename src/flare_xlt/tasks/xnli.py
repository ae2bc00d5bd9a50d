"""XNLI: 3-way natural language inference, paired with the original English by row.

Local layout (myXNLI): ``<data>/xnli/<xx>/<xx>.genre.{dev,test}.tsv`` with
columns ``genre,label,sentence1_<xx>,sentence2_<xx>``, read with
``csv.QUOTE_NONE`` (quotes occur inside sentences). Row i of every
``*.genre.*`` file is the same XNLI item, and ``my/my.genre.*`` also holds the
original English (``sentence1_en,sentence2_en``): the *human* English side, an
oracle. For Swahili and Urdu, ``<xx>.trans.test.tsv`` holds the test set with
its machine translation into English, the realistic test-time source
(``english_side="machine"``); its target columns must match the ``genre`` file
row by row (whitespace-only differences are counted in the report notes).

There is no training set here (no MNLI): train and validation are cut from the
dev file by premise (see :mod:`flare_xlt.tasks.splits`); test is the test file.
Example ids are ``dev-<row>`` / ``test-<row>``, the same in every language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flare_xlt.errors import FlareError
from flare_xlt.languages import Language
from flare_xlt.tasks.examples import ClassificationExample
from flare_xlt.tasks.readers import BadField, Record, file_error, read_delimited
from flare_xlt.tasks.report import Issues
from flare_xlt.tasks.spec import TASKS
from flare_xlt.tasks.splits import xnli_in_split

LABELS = TASKS["xnli"].label_names
ENGLISH_FOLDER = "my"  # the myXNLI files that carry the original English columns


@dataclass(frozen=True)
class XnliRow:
    """One premise/hypothesis pair with its label name, its 0-based row index and origin."""

    index: int
    label: str
    premise: str
    hypothesis: str
    file: str
    location: str


def file_part(split: str) -> str:
    """The XNLI file a split is cut from: "dev" for train/validation, "test" for test."""
    return "test" if split == "test" else "dev"


def language_code(language: Language) -> str:
    """The two-letter code XNLI uses for ``language``."""
    if language.iso639_1 is None:
        raise FlareError(f"XNLI has no {language.name} ({language.iso639_3}) data")
    return language.iso639_1


def build(
    target: Sequence[XnliRow],
    english: Sequence[XnliRow],
    english_file: str,
    language: str,
    split: str,
    issues: Issues,
    echo: dict[int, XnliRow] | None = None,
) -> list[ClassificationExample]:
    """Examples of ``split`` from target rows, each paired by row index with its English row.

    ``echo`` holds the target columns of a translate-test file, which must match
    the target rows up to whitespace.
    """
    english_by_index = {row.index: row for row in english}
    part = file_part(split)
    examples: list[ClassificationExample] = []
    whitespace_only = 0
    for row in target:
        if not xnli_in_split(row.index, split):
            continue
        try:
            partner = _check(row, english_by_index.get(row.index), english_file)
            if echo is not None:
                whitespace_only += _check_echo(row, echo.get(row.index))
        except BadField as bad:
            issues.row(row.file, row.location, bad.field, bad.message)
            continue
        examples.append(
            ClassificationExample(
                id=f"{part}-{row.index}",
                language=language,
                target=(row.premise, row.hypothesis),
                label=LABELS.index(row.label),
                source=(partner.premise, partner.hypothesis),
            )
        )
    if whitespace_only:
        issues.note(
            f"{whitespace_only} rows of the translate-test file differ from the target file "
            "in whitespace only"
        )
    return examples


def _check(row: XnliRow, partner: XnliRow | None, english_file: str) -> XnliRow:
    if row.label not in LABELS:
        raise BadField("label", f"label {row.label!r} is not one of {', '.join(LABELS)}")
    for name, text in (("premise", row.premise), ("hypothesis", row.hypothesis)):
        if not text.strip():
            raise BadField(name, "empty text")
    if partner is None:
        raise BadField(None, f"row {row.index} has no partner in {english_file}")
    if partner.label != row.label:
        raise BadField(
            "label",
            f"label {row.label!r} differs from {partner.label!r} in {english_file} "
            f"({partner.location})",
        )
    if not partner.premise.strip() or not partner.hypothesis.strip():
        raise BadField(None, f"the English partner is empty ({english_file}, {partner.location})")
    return partner


def _check_echo(row: XnliRow, echo: XnliRow | None) -> int:
    """1 if the echoed target text differs in whitespace only, 0 if identical; else BadField."""
    if echo is None:
        raise BadField(None, f"row {row.index} is missing from the translate-test file")
    if (echo.premise, echo.hypothesis) == (row.premise, row.hypothesis):
        return 0
    if (_squash(echo.premise), _squash(echo.hypothesis)) == (
        _squash(row.premise),
        _squash(row.hypothesis),
    ):
        return 1
    raise BadField(
        None, f"the translate-test file ({echo.file}, {echo.location}) holds a different item"
    )


def _squash(text: str) -> str:
    return " ".join(text.split())


def read_sides(path: Path, codes: Sequence[str], issues: Issues) -> dict[str, list[XnliRow]]:
    """Rows of an XNLI tsv file, once per language code: its label and ``sentence{1,2}_<code>``."""
    codes = tuple(dict.fromkeys(codes))
    required = ("label", *(f"sentence{n}_{code}" for code in codes for n in (1, 2)))
    records, _ = read_delimited(path, required, issues, delimiter="\t", quote_none=True)
    return {code: [_row(record, path, code) for record in records] for code in codes}


def _row(record: Record, path: Path, code: str) -> XnliRow:
    values = record.values
    # QUOTE_NONE: one line per row, line 1 is the header.
    return XnliRow(
        index=record.line - 2,
        label=values["label"],
        premise=values[f"sentence1_{code}"],
        hypothesis=values[f"sentence2_{code}"],
        file=str(path),
        location=record.location,
    )


def load_local(
    data_dir: Path, language: Language, split: str, english_side: str, issues: Issues
) -> tuple[list[ClassificationExample], tuple[Path, ...]]:
    """Examples of one split from the local myXNLI copy, and the files read."""
    code = language_code(language)
    part = file_part(split)
    base = data_dir / "xnli"
    english_path = base / ENGLISH_FOLDER / f"{ENGLISH_FOLDER}.genre.{part}.tsv"
    target_path = english_path if code == "en" else base / code / f"{code}.genre.{part}.tsv"
    if not target_path.is_file():
        available = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        raise file_error(
            target_path, "file", f"file not found (local XNLI languages: {[*available, 'en']})"
        )
    language_id = language.iso639_3
    if english_side == "human":
        if target_path == english_path:
            sides = read_sides(target_path, (code, "en"), issues)
            target, english = sides[code], sides["en"]
        else:
            target = read_sides(target_path, (code,), issues)[code]
            english = read_sides(english_path, ("en",), issues)["en"]
        examples = build(target, english, str(english_path), language_id, split, issues)
        return examples, tuple(dict.fromkeys((target_path, english_path)))
    machine_path = base / code / f"{code}.trans.test.tsv"
    if split != "test" or not machine_path.is_file():
        raise FlareError(
            f"no machine-translated English for XNLI {code} {split} ({machine_path} holds "
            "translate-test data for the test split only); use english_side='human'"
        )
    target = read_sides(target_path, (code,), issues)[code]
    machine = read_sides(machine_path, (code, "en"), issues)
    echo = {row.index: row for row in machine[code]}
    examples = build(target, machine["en"], str(machine_path), language_id, split, issues, echo)
    return examples, (target_path, machine_path)
