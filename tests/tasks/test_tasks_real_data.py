"""The built-in loaders on the shared datasets, checked against independent reads of the files."""

from __future__ import annotations

import csv
import json

import pytest

from flare_xlt.tasks import load_split

pytestmark = pytest.mark.real_data


def read_csv(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_tsv(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_nusax_javanese_train_pairs_with_english_by_id(data_dir):
    loaded = load_split("nusax_senti", "javanese", "train", data_dir)
    assert len(loaded) == 500 and loaded.report.rows == 500 and not loaded.report.skipped
    base = data_dir / "nusax" / "sentiment"
    english = {row["id"]: row for row in read_csv(base / "english" / "train.csv")}
    javanese = read_csv(base / "javanese" / "train.csv")
    labels = loaded.spec.label_names
    for example, row in zip(loaded, javanese, strict=True):
        assert example.id == row["id"] and example.target == (row["text"],)
        assert example.source == (english[row["id"]]["text"],)
        assert labels[example.label] == row["label"] == english[row["id"]]["label"]


@pytest.mark.parametrize(
    "code", ["ace", "ban", "bjn", "bug", "jav", "mad", "min", "nij", "sun", "bbc", "ind"]
)
def test_nusax_every_target_language(data_dir, code):
    sizes = [
        len(load_split("nusax_senti", code, split, data_dir))
        for split in ("train", "validation", "test")
    ]
    assert sizes == [500, 100, 400]


def test_xnli_sw_test_labels_match_the_english_file(data_dir):
    loaded = load_split("xnli", "sw", "test", data_dir)
    assert len(loaded) == 5010
    burmese = read_tsv(data_dir / "xnli" / "my" / "my.genre.test.tsv")
    labels = loaded.spec.label_names
    for example, row in zip(loaded, burmese, strict=True):
        assert labels[example.label] == row["label"]
        assert example.source == (row["sentence1_en"], row["sentence2_en"])


def test_xnli_dev_cut_into_disjoint_premise_groups(data_dir):
    train = load_split("xnli", "ur", "train", data_dir)
    validation = load_split("xnli", "ur", "validation", data_dir)
    assert (len(train), len(validation)) == (1662, 828)
    assert not {e.id for e in train} & {e.id for e in validation}
    assert not {e.source[0] for e in train} & {e.source[0] for e in validation}


def test_xnli_ur_machine_english(data_dir):
    loaded = load_split("xnli", "ur", "test", data_dir, english_side="machine")
    assert len(loaded) == 5010
    machine = read_tsv(data_dir / "xnli" / "ur" / "ur.trans.test.tsv")
    for example, row in zip(loaded, machine, strict=True):
        assert example.source == (row["sentence1_en"], row["sentence2_en"])
    assert any(note.startswith("4 rows of the translate-test file") for note in loaded.report.notes)
    human = load_split("xnli", "ur", "test", data_dir)
    assert [e.target for e in human] == [e.target for e in loaded]
    assert [e.label for e in human] == [e.label for e in loaded]
    assert sum(h.source != m.source for h, m in zip(human, loaded, strict=True)) > 4000


def test_tydiqa_swahili_dev(data_dir):
    loaded = load_split("tydiqa", "sw", "test", data_dir)
    assert len(loaded) == 499
    assert all(e.source_context is None for e in loaded)
    assert sum(len(e.answers) > 1 for e in loaded) > 0
    for example in loaded:
        for text, start in zip(example.answers, example.answer_starts, strict=True):
            assert example.context[start : start + len(text)] == text


def test_tydiqa_train_split_by_title(data_dir):
    train = load_split("tydiqa", "swahili", "train", data_dir)
    validation = load_split("tydiqa", "swahili", "validation", data_dir)
    assert len(train) + len(validation) == 2755
    assert 0.05 < len(validation) / 2755 < 0.15
    assert not {e.context for e in train} & {e.context for e in validation}


def test_xquad_german_pairs_with_english(data_dir):
    splits = [
        load_split("xquad", "de", split, data_dir) for split in ("train", "validation", "test")
    ]
    examples = [e for split in splits for e in split]
    assert len(examples) == len({e.id for e in examples}) == 1190
    with (data_dir / "xquad" / "xquad.en.json").open(encoding="utf-8") as handle:
        english = {
            q["id"]: (p["context"], q["question"])
            for a in json.load(handle)["data"]
            for p in a["paragraphs"]
            for q in p["qas"]
        }
    for example in examples:
        assert (example.source_context, example.source_question) == english[example.id]
        assert example.language == "deu"
    contexts = [{e.source_context for e in split} for split in splits]
    assert not (contexts[0] & contexts[1] or contexts[0] & contexts[2] or contexts[1] & contexts[2])
