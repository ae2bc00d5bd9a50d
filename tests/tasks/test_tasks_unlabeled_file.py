"""The reader of a user's unlabeled file (``flare predict`` input): rows, ids and bad input."""

from __future__ import annotations

import pytest
from task_files import write_csv, write_jsonl

from flare_xlt.errors import FlareError
from flare_xlt.tasks import ClassificationExample, QAExample
from flare_xlt.tasks.unlabeled_file import load_unlabeled_file


def load(path, kind="classification", n_texts=1, english=False):
    return load_unlabeled_file(path, kind, n_texts, "quy", english=english)


def test_csv_rows_without_ids_are_numbered(tmp_path):
    path = write_csv(tmp_path / "in.csv", [["target_text", "label"], ["allin", "x"], ["mana", "y"]])
    rows = load(path)
    assert rows.ids == (1, 2)
    assert rows.examples[1] == ClassificationExample("2", "quy", ("mana",), 0, None)
    assert "ignored columns: label" in rows.report.summary()


def test_jsonl_ids_english_and_pairs(tmp_path):
    records = [
        {"id": 7, "target_text": "a", "target_text_pair": "b", "source_text": "A",
         "source_text_pair": "B"},
        {"id": "x", "target_text": "c", "target_text_pair": "d", "source_text": "C",
         "source_text_pair": "D"},
    ]  # fmt: skip
    rows = load(write_jsonl(tmp_path / "in.jsonl", records), n_texts=2, english=True)
    assert rows.ids == ("7", "x")
    assert rows.examples[0] == ClassificationExample("7", "quy", ("a", "b"), 0, ("A", "B"))


def test_qa_rows_get_a_placeholder_answer(tmp_path):
    records = [{"context": "c", "question": "q", "source_context": "C", "source_question": "Q"}]
    rows = load(write_jsonl(tmp_path / "qa.jsonl", records), kind="qa", english=True)
    assert rows.examples[0] == QAExample("1", "quy", "c", "q", ("",), (0,), "C", "Q", ("",))
    target_only = load(write_jsonl(tmp_path / "qa.jsonl", records), kind="qa")
    assert not target_only.examples[0].has_source


def _one_line_error(path, *fragments, **kwargs):
    with pytest.raises(FlareError) as info:
        load(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_missing_english_column_is_named(tmp_path):
    path = write_csv(tmp_path / "in.csv", [["id", "target_text"], ["1", "allin"]])
    _one_line_error(
        path,
        "line 1: field 'source_text': missing column(s) source_text",
        "the method reads the English side",
        english=True,
    )
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"context": "c", "question": "q"}])
    missing = "missing column(s) source_context, source_question"
    _one_line_error(qa, missing, kind="qa", english=True)


@pytest.mark.parametrize(
    ("rows", "fragments"),
    [
        ([["text"], ["allin"]], ("line 1", "missing column(s) target_text; found text")),
        ([["id", "target_text"], ["1", "a"], ["1", "b"]], ("line 3", "duplicate id '1'")),
        ([["id", "target_text"], ["1", " "]], ("line 2", "'target_text'", "empty text")),
        ([["id", "target_text"], ["1", "a", "extra"]], ("line 2", "expected 2 fields")),
        ([["target_text"]], ("no rows to predict",)),
    ],
)
def test_bad_rows_are_one_line_errors(tmp_path, rows, fragments):
    _one_line_error(write_csv(tmp_path / "in.csv", rows), *fragments)


def test_a_text_pair_task_needs_the_second_text(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"target_text": "premise"}])
    _one_line_error(path, "missing column(s) target_text_pair", n_texts=2)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "in.parquet"
    path.write_text("x")
    _one_line_error(path, "unsupported file type (use .csv, .tsv, .jsonl, .ndjson)")
