"""Writers for the small data files the task tests create."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    """Write rows (the first is the header) as CSV/TSV, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerows(rows)
    return path


def write_tsv_raw(path: Path, rows: list[list[str]]) -> Path:
    """Write tab-separated rows without any quoting (the XNLI layout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[object]) -> Path:
    """Write one JSON value per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    path.write_text(text, encoding="utf-8")
    return path


def squad_document(questions: list[dict], context: str, title: str = "T") -> dict:
    """A SQuAD v1.1 document with one article and one paragraph."""
    return {
        "version": "1.1",
        "data": [{"title": title, "paragraphs": [{"context": context, "qas": questions}]}],
    }
