"""The built-in loaders on small data directories the tests write: pairing, splits, bad input."""

from __future__ import annotations

import json

import pytest
from task_files import squad_document, write_csv, write_tsv_raw

from flare_xlt.errors import FlareError
from flare_xlt.tasks import ClassificationExample, load_split, load_task

NUSAX_HEADER = ["id", "text", "label"]


def nusax_dir(tmp_path, javanese_rows, english_rows, split="train"):
    base = tmp_path / "nusax" / "sentiment"
    write_csv(base / "javanese" / f"{split}.csv", [NUSAX_HEADER, *javanese_rows])
    write_csv(base / "english" / f"{split}.csv", [NUSAX_HEADER, *english_rows])
    return tmp_path


def test_nusax_pairs_by_id_not_by_row(tmp_path):
    data = nusax_dir(
        tmp_path,
        [["5", "Enak", "positive"], ["3", "Ala", "negative"]],
        [["3", "Bad", "negative"], ["9", "Extra", "neutral"], ["5", "Tasty", "positive"]],
    )
    loaded = load_split("nusax_senti", "javanese", "train", data)
    assert loaded.examples == (
        ClassificationExample("5", "jav", ("Enak",), 2, ("Tasty",)),
        ClassificationExample("3", "jav", ("Ala",), 0, ("Bad",)),
    )
    assert any("1 English rows have no jav partner" in note for note in loaded.report.notes)
    assert load_task("nusax_senti", "JV", "train", data) == list(loaded.examples)


def test_nusax_missing_partner_names_file_and_id(tmp_path):
    data = nusax_dir(
        tmp_path, [["5", "Enak", "positive"], ["7", "Apik", "positive"]], [["5", "T", "positive"]]
    )
    with pytest.raises(FlareError) as info:
        load_split("nusax_senti", "jav", "train", data)
    message = str(info.value)
    assert "javanese/train.csv: line 3: field 'id'" in message
    assert "id '7' has no partner in" in message and "english/train.csv" in message


def test_nusax_label_checks(tmp_path):
    data = nusax_dir(tmp_path, [["5", "Enak", "positive"]], [["5", "T", "negative"]])
    with pytest.raises(FlareError, match=r"train.csv: line 2: field 'label': .*differs"):
        load_split("nusax_senti", "jav", "train", data)
    data = nusax_dir(tmp_path, [["5", "Enak", "great"]], [["5", "T", "great"]])
    with pytest.raises(FlareError, match=r"train.csv: line 2: field 'label': label 'great'"):
        load_split("nusax_senti", "jav", "train", data)


def test_nusax_skip_mode_and_empty_split(tmp_path):
    data = nusax_dir(
        tmp_path,
        [["5", "Enak", "positive"], ["6", "", "neutral"]],
        [["5", "T", "positive"], ["6", "U", "neutral"]],
    )
    loaded = load_split("nusax_senti", "jav", "train", data, errors="skip")
    assert len(loaded) == 1 and loaded.report.rows == 2
    assert loaded.report.skipped[0].field == "text"
    data = nusax_dir(tmp_path, [], [["5", "T", "positive"]], split="valid")
    with pytest.raises(FlareError, match="no examples"):
        load_split("nusax_senti", "jav", "validation", data)


def test_missing_files_and_uncovered_languages(tmp_path):
    data = nusax_dir(tmp_path, [["5", "Enak", "positive"]], [["5", "T", "positive"]])
    with pytest.raises(FlareError, match=r"sundanese/train.csv: file: file not found"):
        load_split("nusax_senti", "sun", "train", data)
    with pytest.raises(FlareError, match="NusaX-senti has no Swahili"):
        load_split("nusax_senti", "sw", "train", data)
    with pytest.raises(FlareError, match="split must be one of"):
        load_split("nusax_senti", "jav", "valid", data)
    with pytest.raises(FlareError, match=r"javanese/valid.csv: file: file not found"):
        load_split("nusax_senti", "jav", "dev", data)  # dev is the validation split
    with pytest.raises(FlareError, match="nusax_senti has no machine-translated English"):
        load_split("nusax_senti", "jav", "train", data, english_side="machine")
    with pytest.raises(FlareError, match="does not exist"):
        load_split("nusax_senti", "jav", "train", tmp_path / "nowhere")


XNLI_LABELS = ["neutral", "contradiction", "entailment"]


def xnli_dir(tmp_path, n_rows=9, sw_labels=None, trans_rows=None):
    """A myXNLI-style directory: ``n_rows`` dev and test rows in my (with English) and sw."""
    base = tmp_path / "xnli"
    for part in ("dev", "test"):
        my = [["genre", "label", "sentence1_en", "sentence2_en", "sentence1_my", "sentence2_my"]]
        sw = [["genre", "label", "sentence1_sw", "sentence2_sw"]]
        for i in range(n_rows):
            label = XNLI_LABELS[i % 3]
            my.append(["g", label, f'P"{i // 3}', f"H{i}", f"my{i}", f"myh{i}"])
            sw_label = sw_labels[i] if sw_labels else label
            sw.append(["g", sw_label, f"sw{i // 3}", f"swh {i}"])
        write_tsv_raw(base / "my" / f"my.genre.{part}.tsv", my)
        write_tsv_raw(base / "sw" / f"sw.genre.{part}.tsv", sw)
    if trans_rows is not None:
        header = ["label", "sentence1_en", "sentence2_en", "sentence1_sw", "sentence2_sw"]
        write_tsv_raw(base / "sw" / "sw.trans.test.tsv", [header, *trans_rows])
    return tmp_path


def test_xnli_splits_are_premise_groups(tmp_path):
    data = xnli_dir(tmp_path, n_rows=18)
    train = load_split("xnli", "sw", "train", data)
    validation = load_split("xnli", "sw", "validation", data)
    assert [e.id for e in validation] == ["dev-6", "dev-7", "dev-8", "dev-15", "dev-16", "dev-17"]
    assert len(train) == 12
    assert train[0] == ClassificationExample("dev-0", "swh", ("sw0", "swh 0"), 1, ('P"0', "H0"))
    test = load_split("xnli", "sw", "test", data)
    assert len(test) == 18 and test[0].id == "test-0"
    english = load_split("xnli", "en", "test", data)
    assert english[1].target == english[1].source == ('P"0', "H1")
    burmese = load_split("xnli", "my", "test", data)
    assert burmese[1].target == ("my1", "myh1") and burmese[1].source == ('P"0', "H1")


def test_xnli_label_mismatch_names_both_files(tmp_path):
    labels = [XNLI_LABELS[i % 3] for i in range(9)]
    labels[4] = "entailment"
    data = xnli_dir(tmp_path, sw_labels=labels)
    with pytest.raises(FlareError) as info:
        load_split("xnli", "sw", "test", data)
    message = str(info.value)
    assert "sw.genre.test.tsv: line 6: field 'label'" in message
    assert "my.genre.test.tsv (line 6)" in message


def test_xnli_bad_rows(tmp_path):
    data = xnli_dir(tmp_path)
    path = data / "xnli" / "sw" / "sw.genre.test.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = "g\tneutral\tonly premise"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(FlareError, match=r"sw.genre.test.tsv: line 4: expected 4 fields"):
        load_split("xnli", "sw", "test", data)
    loaded = load_split("xnli", "sw", "test", data, errors="skip")
    assert len(loaded) == 8 and loaded.report.rows == 9
    assert "test-2" not in {e.id for e in loaded}


def test_xnli_machine_side(tmp_path):
    rows = [[XNLI_LABELS[i % 3], f"mt{i}", f"mth{i}", f"sw{i // 3}", f"swh {i}"] for i in range(9)]
    rows[2][4] = "swh  2 "  # whitespace-only difference
    data = xnli_dir(tmp_path, trans_rows=rows)
    loaded = load_split("xnli", "sw", "test", data, english_side="machine")
    assert loaded[0].source == ("mt0", "mth0") and loaded[0].target == ("sw0", "swh 0")
    assert any("1 rows of the translate-test file differ" in n for n in loaded.report.notes)
    assert str(data / "xnli" / "sw" / "sw.trans.test.tsv") in loaded.report.files
    with pytest.raises(FlareError, match="test split only"):
        load_split("xnli", "sw", "validation", data, english_side="machine")
    rows[5][3] = "another premise"
    xnli_dir(tmp_path, trans_rows=rows)
    with pytest.raises(FlareError, match=r"sw.genre.test.tsv: line 7: .*different item"):
        load_split("xnli", "sw", "test", data, english_side="machine")


def test_xnli_missing_language_lists_local_ones(tmp_path):
    data = xnli_dir(tmp_path)
    with pytest.raises(
        FlareError, match=r"ur.genre.test.tsv: file: file not found .*my', 'sw', 'en'"
    ):
        load_split("xnli", "ur", "test", data)
    with pytest.raises(FlareError, match="machine-translated"):
        load_split("xnli", "my", "test", data, english_side="machine")


def write_json(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def qa(identifier, question, text, start):
    return {
        "id": identifier,
        "question": question,
        "answers": [{"text": text, "answer_start": start}],
    }


def test_tydiqa_answer_start_mismatch_names_location(tmp_path):
    document = squad_document([qa("swahili-1", "Nini?", "Nairobi", 0)], "Mji ni Nairobi.")
    write_json(tmp_path / "tydiqa_goldp" / "dev" / "swahili_tydiqa_dev.json", document)
    with pytest.raises(FlareError) as info:
        load_split("tydiqa", "sw", "test", tmp_path)
    message = str(info.value)
    assert "swahili_tydiqa_dev.json: data[0].paragraphs[0].qas[0]: field 'answers'" in message
    assert "answer_start 0 does not match" in message
    with pytest.raises(FlareError, match=r"file not found \(local TyDiQA dev: \['swahili'\]\)"):
        load_split("tydiqa", "fi", "test", tmp_path)
    with pytest.raises(FlareError, match="no machine-translated English"):
        load_split("tydiqa", "sw", "test", tmp_path, english_side="machine")


def test_tydiqa_train_validation_cut_by_title(tmp_path):
    articles = []
    for t in range(20):
        paragraph = {"context": "abc", "qas": [qa(f"sw-{t}-{k}", "q", "b", 1) for k in range(2)]}
        articles.append({"title": f"title{t:02d}", "paragraphs": [paragraph]})
    write_json(
        tmp_path / "tydiqa_goldp" / "train" / "swahili_tydiqa_train.json", {"data": articles}
    )
    train = load_split("tydiqa", "swahili", "train", tmp_path)
    validation = load_split("tydiqa", "swahili", "validation", tmp_path)
    assert sorted(e.id for e in validation) == ["sw-19-0", "sw-19-1", "sw-9-0", "sw-9-1"]
    assert len(train) == 36
    assert train[0].source_context is None


def test_xquad_pairs_by_id(tmp_path):
    english = squad_document([qa("a", "How many?", "308", 3), qa("b", "Who?", "X", 0)], "X: 308")
    german = squad_document([qa("b", "Wer?", "X", 0), qa("c", "Was?", "3", 3)], "X: 308")
    write_json(tmp_path / "xquad" / "xquad.en.json", english)
    write_json(tmp_path / "xquad" / "xquad.de.json", german)
    with pytest.raises(FlareError) as info:
        load_split("xquad", "de", "train", tmp_path)
    message = str(info.value)
    assert "xquad.de.json: data[0].paragraphs[0].qas[1]: field 'id'" in message
    assert "'c' has no partner in" in message and "xquad.en.json" in message
    loaded = load_split("xquad", "de", "train", tmp_path, errors="skip")
    assert [(e.id, e.question, e.source_question) for e in loaded] == [("b", "Wer?", "Who?")]
    assert loaded.report.rows == 2


def test_xquad_duplicate_ids(tmp_path):
    english = squad_document([qa("a", "How many?", "308", 3), qa("a", "Again?", "X", 0)], "X: 308")
    write_json(tmp_path / "xquad" / "xquad.en.json", english)
    with pytest.raises(FlareError, match=r"qas\[1\]: field 'id': duplicate id 'a'"):
        load_split("xquad", "en", "train", tmp_path)
