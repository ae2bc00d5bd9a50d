"""The loader for a user's own parallel data file: formats, and every bad-input case."""

from __future__ import annotations

import json
import logging

import pytest
from task_files import squad_document, write_csv, write_jsonl

from flare_xlt import languages
from flare_xlt.errors import FlareError
from flare_xlt.tasks import ClassificationExample, DataFileError, QAExample, load_parallel_file

LABELS = ("negative", "neutral", "positive")
HEADER = ["id", "source_text", "target_text", "label"]


def load(path, kind="classification", labels=LABELS, language="jav", **kwargs):
    return load_parallel_file(path, kind, labels, language, **kwargs)


def test_csv_classification(tmp_path):
    path = write_csv(
        tmp_path / "train.csv",
        [HEADER, ["a", 'Good, "very"\nfood', "Enak", "positive"], ["b", "Bad", "Ala", "negative"]],
    )
    loaded = load(path)
    assert loaded.examples == (
        ClassificationExample("a", "jav", ("Enak",), 2, ('Good, "very"\nfood',)),
        ClassificationExample("b", "jav", ("Ala",), 0, ("Bad",)),
    )
    assert (loaded.split, loaded.language, loaded.spec.name) == ("train", "jav", "custom")
    assert loaded.spec.prompt.format("Enak") == "Enak\nLabel: "
    assert loaded.report.rows == 2 and not loaded.report.skipped


def test_pairs_optional_columns_and_unknown_language(tmp_path, caplog):
    header = ["target_text", "target_text_pair", "label", "genre"]
    path = write_csv(tmp_path / "nli.tsv", [header, ["p", "h", "yes", "x"]], delimiter="\t")
    languages._note_unlisted.cache_clear()  # as in a fresh process
    with caplog.at_level(logging.INFO, logger="flare_xlt"):
        for _ in range(2):
            loaded = load_parallel_file(
                path, "classification", ["yes", "no"], "qxq", task_name="nli"
            )
    example = loaded[0]
    assert example == ClassificationExample("nli-2", "qxq", ("p", "h"), 0, None)
    notes = " ".join(loaded.report.notes)
    assert "ignored unknown columns: genre" in notes and "no English side" in notes
    noted = [r.getMessage() for r in caplog.records if "not in the registry" in r.getMessage()]
    assert noted == ["note: language 'qxq' is not in the registry; used as given"]  # once
    assert loaded.spec.prompt.fields == ("text", "text_pair")


@pytest.mark.parametrize("language", ["java nese", "123", "quechua"])
def test_a_language_that_is_no_code_is_refused(tmp_path, language):
    # a well-formed code outside the registry is kept; a name or garbage is not a code
    path = write_csv(tmp_path / "ok.csv", [HEADER, ["1", "s", "t", "neutral"]])
    with pytest.raises(FlareError, match=f"unknown language '{language}': not in the registry"):
        load(path, language=language)


def test_jsonl_labels_by_name_or_index(tmp_path):
    rows = [
        {"id": 1, "source_text": "s", "target_text": "t", "label": "neutral"},
        {"id": 2, "source_text": "s", "target_text": "t", "label": 2},
    ]
    loaded = load(write_jsonl(tmp_path / "d.jsonl", rows))
    assert [(e.id, e.label) for e in loaded] == [("1", 1), ("2", 2)]


def test_qa_jsonl_both_answer_styles(tmp_path):
    rows = [
        {
            "id": "q1",
            "context": "Mji ni Nairobi.",
            "question": "Mji?",
            "answers": [{"text": "Nairobi", "answer_start": 7}],
            "source_context": "The city is Nairobi.",
            "source_question": "City?",
            "source_answers": {"text": ["Nairobi"], "answer_start": [12]},
        },
        {
            "id": "q2",
            "context": "abc",
            "question": "q",
            "source_context": "x",
            "source_question": "y",
            "source_answers": [{"text": "x", "answer_start": 0}],
            "answers": {"text": ["b", "bc"], "answer_start": [1, 1]},
        },
    ]
    loaded = load(write_jsonl(tmp_path / "qa.jsonl", rows), "qa", ())
    assert loaded[0] == QAExample(
        "q1",
        "jav",
        "Mji ni Nairobi.",
        "Mji?",
        ("Nairobi",),
        (7,),
        "The city is Nairobi.",
        "City?",
        ("Nairobi",),
    )
    assert loaded[1].answers == ("b", "bc")
    assert loaded.spec.metric == "squad"


def test_qa_squad_json(tmp_path):
    doc = squad_document(
        [{"id": "x", "question": "q", "answers": [{"text": "b", "answer_start": 1}]}], "abc"
    )
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    loaded = load(path, "qa", ())
    assert loaded[0] == QAExample("x", "jav", "abc", "q", ("b",), (1,))


def test_csv_field_longer_than_the_csv_module_default(tmp_path):
    text = "panjang " * 40_000  # 320 000 characters > csv's default 131 072 limit
    path = write_csv(tmp_path / "long.csv", [HEADER, ["1", text, text, "neutral"]])
    assert load(path)[0].target == (text,)


def test_utf8_bom_is_tolerated(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("\ufefftarget_text,label\nx,neutral\n", encoding="utf-8")
    assert load(path)[0].target == ("x",)


def _error(tmp_path, path, *fragments, **kwargs):
    with pytest.raises(FlareError) as info:
        load(path, **kwargs)
    message = str(info.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


@pytest.mark.parametrize(
    ("rows", "fragments"),
    [
        ([HEADER, ["1", "s", "t", "happy"]], ("line 2", "'label'", "'happy' is not one of")),
        (
            [HEADER, ["1", "s", "t", "neutral"], ["2", "s", " ", "neutral"]],
            ("line 3", "'target_text'", "empty"),
        ),
        (
            [HEADER, ["1", "s", "t", "neutral"], ["1", "s", "t", "neutral"]],
            ("line 3", "'id'", "duplicate id '1' (first on line 2)"),
        ),
        ([HEADER, ["1", "s", "t"]], ("line 2", "expected 4 fields")),
        (
            [["id", "source_text", "text", "label"]],
            ("line 1", "'target_text'", "missing column(s) target_text"),
        ),
        ([HEADER], ("no examples",)),
        (
            [["target_text", "source_text_pair", "label"]],
            ("source_text_pair", "missing column(s) target_text_pair"),
        ),
    ],
)
def test_bad_csv_rows_name_file_line_and_field(tmp_path, rows, fragments):
    _error(tmp_path, write_csv(tmp_path / "bad.csv", rows), *fragments)


def test_malformed_csv_quoting(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('target_text,label\n"ok",neutral\n"broken"x,neutral\n', encoding="utf-8")
    _error(tmp_path, path, "line 3", "malformed CSV")
    path.write_text('target_text,label\n"never closed,neutral\n', encoding="utf-8")
    _error(tmp_path, path, "malformed CSV")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('target_text,label\n"ok",neutral\n"never closed,neutral\nx,neutral\ny,neutral\n', 3),
        # a multi-line field with a doubled quote closes; the quote on line 4 does not
        ('target_text,label\n"two\nlines ""q""",neutral\nok,"neutral\n\nz,neutral\n', 4),
        ('"target_text,label\nx,neutral\n', 1),
    ],
)
def test_an_unclosed_quote_is_reported_where_it_opened(tmp_path, text, line):
    # found by review: it was reported on the file's last line, far from the mistake
    path = tmp_path / "quote.csv"
    path.write_text(text, encoding="utf-8")
    _error(tmp_path, path, f"line {line}: malformed CSV: a quoted field opened on this line")


def test_missing_empty_and_unsupported_files(tmp_path):
    _error(tmp_path, tmp_path / "absent.csv", "file not found")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    _error(tmp_path, empty, "line 1", "empty file")
    other = tmp_path / "data.parquet"
    other.write_text("x", encoding="utf-8")
    _error(tmp_path, other, "unsupported file type")
    csv_qa = write_csv(tmp_path / "qa.csv", [["context"], ["c"]])
    _error(tmp_path, csv_qa, "unsupported file type for qa", kind="qa", labels=())


def test_bad_jsonl_rows(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"target_text": "t", "label": 0}\n{"target_text": "t", "label": \n', "utf-8")
    _error(tmp_path, path, "line 2", "malformed JSON")
    write_jsonl(path, [{"target_text": "t", "label": 0}, [1, 2]])
    _error(tmp_path, path, "line 2", "expected a JSON object")
    write_jsonl(path, [{"target_text": "t", "label": 0}, {"label": 1}])
    _error(tmp_path, path, "line 2", "'target_text'", "missing value")
    write_jsonl(path, [{"target_text": 5, "label": 0}])
    _error(tmp_path, path, "line 1", "'target_text'", "expected text, found int")
    write_jsonl(path, [{"target_text": "t", "label": True}])
    _error(tmp_path, path, "line 1", "'label'")


@pytest.mark.parametrize(
    ("record", "fragments"),
    [
        (
            {"answers": [{"text": "abc", "answer_start": 1}]},
            ("'answers'", "answer_start 1 does not match the context"),
        ),
        ({"answers": []}, ("'answers'", "no answers")),
        ({"answers": [{"text": "a"}]}, ("'answers'", "needs 'text' and 'answer_start'")),
        ({"answers": [{"text": "a", "answer_start": -1}]}, ("'answers'", "non-negative")),
        ({"question": ""}, ("'question'", "empty text")),
        (
            {
                "source_context": "x",
                "source_question": "y",
                "source_answers": [{"text": "z", "answer_start": 0}],
            },
            ("'source_answers'", "does not match"),
        ),
    ],
)
def test_bad_qa_records(tmp_path, record, fragments):
    base = {
        "id": "q",
        "context": "abc",
        "question": "q?",
        "answers": [{"text": "a", "answer_start": 0}],
    }
    path = write_jsonl(tmp_path / "qa.jsonl", [{**base, **record}])
    _error(tmp_path, path, "line 1", *fragments, kind="qa", labels=())


def test_bad_squad_json(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text('{"data": [\n{"paragraphs": ]}', encoding="utf-8")
    _error(tmp_path, path, "line 2", "malformed JSON", kind="qa", labels=())
    doc = squad_document(
        [{"id": "x", "question": "q", "answers": [{"text": "c", "answer_start": 0}]}], "abc"
    )
    path.write_text(json.dumps(doc), encoding="utf-8")
    _error(tmp_path, path, "data[0].paragraphs[0].qas[0]", "'answers'", kind="qa", labels=())


def test_bad_arguments(tmp_path):
    path = write_csv(tmp_path / "ok.csv", [HEADER, ["1", "s", "t", "neutral"]])
    with pytest.raises(FlareError, match="task kind"):
        load(path, kind="regression")
    with pytest.raises(FlareError, match="two distinct label names"):
        load(path, labels=("a", "a"))
    with pytest.raises(FlareError, match="errors must be"):
        load(path, errors="ignore")
    with pytest.raises(FlareError, match="language code is required"):
        load(path, language=" ")


def test_skip_mode_reports_every_bad_row(tmp_path):
    rows = [
        HEADER,
        ["1", "s", "t", "neutral"],
        ["2", "s", "t", "bogus"],
        ["3", "s"],
        ["4", "s", "t", "positive"],
    ]
    path = write_csv(tmp_path / "mixed.csv", rows)
    loaded = load(path, errors="skip")
    assert [e.id for e in loaded] == ["1", "4"]
    report = loaded.report
    assert report.rows == 4 and report.loaded == 2
    skipped = sorted(report.skipped, key=lambda e: e.location)
    assert [(e.location, e.field) for e in skipped] == [("line 3", "label"), ("line 4", None)]
    assert all(e.file == str(path) for e in skipped)
    assert "loaded 2 of 4 rows" in report.summary()
    assert (
        str(skipped[0])
        == f"{path}: line 3: field 'label': label 'bogus' is not one of negative, neutral, positive"
    )


def test_raise_mode_error_carries_the_row_error(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [HEADER, ["1", "s", "t", "bogus"]])
    error = _error(tmp_path, path)
    assert isinstance(error, DataFileError)
    assert (error.row_error.location, error.row_error.field) == ("line 2", "label")
