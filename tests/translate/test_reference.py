"""Reference files for chrF: reading them, checking them before translating, scoring."""

import json
import re

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.evaluate import chrf
from flare_xlt.tasks import ClassificationExample, QAExample
from flare_xlt.translate.reference import check_references, read_references, score_translations


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_csv_tsv_and_jsonl_references_by_id(tmp_path):
    (tmp_path / "ref.csv").write_text('id,text,label\n1,"The food, great.",positive\n2,Big,x\n')
    (tmp_path / "ref.tsv").write_text("id\ttext\n1\tThe food, great.\n2\tBig\n")
    rows = [{"id": 1, "text": "The food, great."}, {"id": "2", "text": "Big"}]
    write_jsonl(tmp_path / "ref.jsonl", rows)
    for name in ("ref.csv", "ref.tsv", "ref.jsonl"):
        assert read_references(tmp_path / name) == {"1": ("The food, great.",), "2": ("Big",)}
    pairs = [{"id": "p", "text": "A man sleeps.", "text_pair": "Nobody sleeps."}]
    assert read_references(write_jsonl(tmp_path / "pairs.jsonl", pairs)) == {
        "p": ("A man sleeps.", "Nobody sleeps.")
    }


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ref.txt", "a\n", "unsupported reference file type"),
        ("ref.csv", "id,sentence\n1,a\n", "missing column(s) text"),
        ("ref.csv", "id,text\n1,a\n1,b\n", "line 3: field 'id': id '1' is repeated"),
        ("ref.csv", "id,text\n1, \n", "line 2: field 'text': empty text"),
        ("ref.jsonl", '{"text": "a"}\n', "line 1: field 'id': missing value"),
        ("ref.csv", "id,text\n", "no reference texts"),
    ],
)
def test_bad_reference_files_name_the_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FlareError, match=re.escape(message)) as info:
        read_references(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_examples_are_checked_before_translating():
    one = ClassificationExample("1", "jav", ("Panganane enak.",), 2)
    pair = ClassificationExample("2", "jav", ("Wong turu.", "Ora ana sing turu."), 0)
    check_references({"1": ("The food is good.",)}, [one])
    with pytest.raises(FlareError, match="has no text for example '2'"):
        check_references({"1": ("The food is good.",)}, [one, pair])
    with pytest.raises(FlareError, match=r"example '2' is a text pair, .* add a text_pair column"):
        check_references({"2": ("A man sleeps.",)}, [pair])
    qa = QAExample("q", "swh", "Nairobi ni mji.", "Mji gani?", ("Nairobi",), (0,))
    with pytest.raises(FlareError, match="not QA examples such as 'q'"):
        check_references({"q": ("x",)}, [qa])


def test_the_translated_side_is_scored_in_either_direction(tmp_path):
    records = [
        {"id": "1", "source_text": "The food good.", "target_text": "Panganane enak."},
        {"id": "2", "source_text": "City big.", "target_text": "Kuthane gedhe."},
    ]
    output = write_jsonl(tmp_path / "pairs.jsonl", records)
    english = {"1": ("The food was great.",), "2": ("The city is big.",), "3": ("Unused.",)}
    score = score_translations(output, "to_english", english)
    expected = chrf(["The food good.", "City big."], ["The food was great.", "The city is big."])
    assert (score.chrf, score.texts) == (expected, 2)
    javanese = {"1": ("Panganane enak.",), "2": ("Kuthane gedhe.",)}
    assert score_translations(output, "to_target", javanese).chrf.score == 100.0
    with pytest.raises(FlareError, match="no text for example '2'"):
        score_translations(output, "to_english", {"1": ("The food was great.",)})


def test_text_pairs_score_both_texts_and_qa_files_are_refused(tmp_path):
    record = {
        "id": "p",
        "source_text": "A man sleeps.",
        "source_text_pair": "Nobody sleeps.",
        "target_text": "x",
        "target_text_pair": "y",
    }
    output = write_jsonl(tmp_path / "pairs.jsonl", [record])
    score = score_translations(output, "to_english", {"p": ("A man sleeps.", "Nobody sleeps.")})
    assert (score.chrf.score, score.texts) == (100.0, 2)
    with pytest.raises(FlareError, match="add a text_pair column"):
        score_translations(output, "to_english", {"p": ("A man sleeps.",)})
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"id": "q", "context": "c", "question": "q"}])
    with pytest.raises(FlareError, match="not the QA examples in"):
        score_translations(qa, "to_english", {"q": ("c",)})
