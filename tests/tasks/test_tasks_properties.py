"""Property-based tests: the generic loader and prompt rendering on hostile text.

Rows are written with the csv / json writers and read back. Every row must come
back either identical or as a reported error; nothing is lost silently.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_xlt.tasks import (
    ClassificationExample,
    QAExample,
    get_template,
    load_parallel_file,
)

LABELS = ("negative", "neutral", "positive")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that UTF-8 can encode (no lone surrogates), biased toward the hard cases.
hostile = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(
        [
            "",
            "   ",
            'a, "quoted", b',
            "line one\nline two\r\nthree\rfour",
            "tab\there",
            "\x00\x01\x1b[31mcontrol\x7f",
            "العربية والإنجليزية mixed עברית",
            "\u202eRTL override\u202c and \u200f",
            "日本語とEnglishと한국어",
            "\ufeffbom inside",
            "{premise} {0} }{",
            "x" * 5000,
        ]
    ),
)
label = st.one_of(st.sampled_from(LABELS), st.sampled_from(["", "Positive", "bogus"]))
rows = st.lists(st.tuples(hostile, hostile, label), min_size=1, max_size=8)


def valid(source: str, target: str, label_name: str) -> bool:
    return bool(source.strip()) and bool(target.strip()) and label_name in LABELS


def check_round_trip(loaded, written) -> None:
    expected = [
        ClassificationExample(str(i), "jav", (target,), LABELS.index(name), (source,))
        for i, (source, target, name) in enumerate(written)
        if valid(source, target, name)
    ]
    assert list(loaded.examples) == expected
    assert len(loaded.report.skipped) == len(written) - len(expected)
    assert loaded.report.rows == len(written)


def load(path: Path, errors: str = "skip"):
    return load_parallel_file(path, "classification", LABELS, "jav", errors=errors)


@SETTINGS
@given(rows)
def test_csv_rows_round_trip_or_are_reported(written):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "source_text", "target_text", "label"])
            writer.writerows([str(i), *row] for i, row in enumerate(written))
        if not any(valid(*row) for row in written):
            return  # an all-bad file raises "no examples"; covered by unit tests
        check_round_trip(load(path), written)


@SETTINGS
@given(rows)
def test_jsonl_rows_round_trip_or_are_reported(written):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for i, (source, target, name) in enumerate(written):
                record = {"id": str(i), "source_text": source, "target_text": target, "label": name}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        if not any(valid(*row) for row in written):
            return
        check_round_trip(load(path), written)


@st.composite
def qa_records(draw):
    context = draw(hostile)
    question = draw(hostile)
    if context and draw(st.booleans()):
        start = draw(st.integers(0, len(context) - 1))
        end = draw(st.integers(start + 1, len(context)))
        text = context[start:end]
    else:
        start, text = draw(st.integers(0, 3)), draw(hostile)
    return {
        "context": context,
        "question": question,
        "answers": [{"text": text, "answer_start": start}],
    }


def qa_valid(record) -> bool:
    answer = record["answers"][0]
    start, text, context = answer["answer_start"], answer["text"], record["context"]
    return (
        bool(context.strip())
        and bool(record["question"].strip())
        and bool(text)
        and context[start : start + len(text)] == text
    )


@SETTINGS
@given(st.lists(qa_records(), min_size=1, max_size=6))
def test_qa_jsonl_round_trip_or_is_reported(records):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "qa.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for i, record in enumerate(records):
                handle.write(json.dumps({"id": f"q{i}", **record}, ensure_ascii=False) + "\n")
        expected = [
            QAExample(
                f"q{i}", "swh", r["context"], r["question"], (r["answers"][0]["text"],),
                (r["answers"][0]["answer_start"],),
            )
            for i, r in enumerate(records)
            if qa_valid(r)
        ]  # fmt: skip
        if not expected:
            return
        loaded = load_parallel_file(path, "qa", (), "sw", errors="skip")
        assert list(loaded.examples) == expected
        assert loaded.report.rows == len(records)


@settings(max_examples=100, deadline=None)
@given(hostile, hostile)
def test_prompt_templates_insert_texts_verbatim(premise, hypothesis):
    xnli = get_template("xnli")
    assert xnli.format(premise, hypothesis) == (
        f"Premise: {premise}\nHypothesis: {hypothesis}\nLabel: "
    )
    xquad = get_template("xquad")
    assert xquad.format(premise, hypothesis) == (
        f"Context: {premise}\nQuestion: {hypothesis}\nAnswer: "
    )
