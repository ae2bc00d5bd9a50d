"""Own files (``data.files``): any language code, ``dev`` files, provenance, the example."""

import json
import logging
from pathlib import Path

import pytest

from flare_xlt import languages
from flare_xlt.errors import FlareError
from flare_xlt.evaluate import RunResult
from flare_xlt.recipes import load_config, write_report
from flare_xlt.recipes.data import data_provenance, load_examples, split_file
from flare_xlt.recipes.stage2 import Cell

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["negative", "neutral", "positive"]


def write_split(folder: Path, name: str, size: int = 3) -> Path:
    rows = [
        {"source_text": f"good {i}", "target_text": f"allin {i}", "label": LABELS[i % 3]}
        for i in range(size)
    ]
    path = folder / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def own_files(folder: Path, *overrides: str):
    return load_config(
        overrides=["task=mine", f"data.label_names=[{', '.join(LABELS)}]", *overrides],
        values={"data.files": str(folder / "{language}.{split}.jsonl")},
    )


def test_own_files_take_any_language_code_with_a_note_once(tmp_path, caplog):
    # found by a user with SIB-200 files: quy_Latn was refused at config load
    languages._note_unlisted.cache_clear()  # as in a fresh process
    with caplog.at_level(logging.INFO, logger="flare_xlt"):
        config = own_files(tmp_path, "languages=[quy_Latn, yor_Latn, gn, aym, javanese]")
        own_files(tmp_path, "languages=[quy_Latn]")
    assert config.languages == ["quy_Latn", "yor_Latn", "gn", "aym", "javanese"]
    notes = [r.getMessage() for r in caplog.records if "not in the registry" in r.getMessage()]
    assert sorted(notes) == [
        f"note: language '{code}' is not in the registry; used as given"
        for code in ("aym", "gn", "quy_Latn", "yor_Latn")
    ]
    write_split(tmp_path, "quy_Latn.test.jsonl")
    assert [e.language for e in load_examples(config, "quy_Latn", "test")] == ["quy_Latn"] * 3


@pytest.mark.parametrize("language", ["java nese", "123"])
def test_own_files_still_refuse_what_is_no_language_code(tmp_path, language):
    with pytest.raises(FlareError, match=f"unknown language '{language}': not in the registry"):
        own_files(tmp_path, f"languages=[{language}]")


def test_a_language_is_counted_once_however_it_is_written(tmp_path):
    with pytest.raises(FlareError, match="languages lists jav more than once"):
        own_files(tmp_path, "languages=[javanese, jav_Latn]")


def test_built_in_tasks_still_refuse_languages_outside_the_registry():
    with pytest.raises(
        FlareError, match=r"unknown language 'quy_Latn'.*built-in tasks cover registry languages"
    ):
        load_config(overrides=["languages=[quy_Latn]"])


def test_a_built_in_task_names_a_language_it_lacks(tmp_path):
    config = load_config(overrides=["languages=[swahili]"], values={"data.data_dir": str(tmp_path)})
    with pytest.raises(FlareError, match=r"NusaX-senti has no Swahili \(swh\) data"):
        load_examples(config, "swahili", "test")


def test_the_validation_file_may_be_named_dev(tmp_path, caplog):
    write_split(tmp_path, "quy.dev.jsonl", size=2)
    config = own_files(tmp_path, "languages=[quy]")
    with caplog.at_level(logging.INFO, logger="flare_xlt"):
        assert len(load_examples(config, "quy", "validation")) == 2
    assert f"mine/quy/validation: loaded 2 of 2 rows from {tmp_path / 'quy.dev.jsonl'}" in (
        caplog.text
    )
    write_split(tmp_path, "quy.validation.jsonl", size=1)
    with pytest.raises(FlareError, match=r"both .*quy\.validation\.jsonl and .*quy\.dev\.jsonl"):
        split_file(config, "quy", "validation")
    with pytest.raises(
        FlareError, match=r"no train file for quy: .*quy\.train\.jsonl not found \(data\.files\)"
    ):
        split_file(config, "quy", "train")
    missing_both = own_files(tmp_path, "languages=[gn]")
    with pytest.raises(FlareError, match=r"gn\.validation\.jsonl or .*gn\.dev\.jsonl not found"):
        split_file(missing_both, "gn", "validation")


def test_provenance_names_the_files_that_were_read(tmp_path):
    for name in ("quy.train", "quy.dev", "quy.test", "gn.test"):
        write_split(tmp_path, f"{name}.jsonl")
    folder = tmp_path.resolve()
    config = own_files(tmp_path, "languages=[quy, gn]", "methods=[zero_shot]")
    assert data_provenance(config) == {  # stage 1 reads the first language's train/dev
        "files": {
            "quy": {
                "train": str(folder / "quy.train.jsonl"),
                "validation": str(folder / "quy.dev.jsonl"),
                "test": str(folder / "quy.test.jsonl"),
            },
            "gn": {"test": str(folder / "gn.test.jsonl")},
        }
    }


def test_provenance_of_a_built_in_task_is_the_directory_used(tmp_path, monkeypatch):
    given = load_config(values={"data.data_dir": str(tmp_path)})
    assert data_provenance(given) == {"data_dir": str(tmp_path.resolve())}
    monkeypatch.setenv("FLARE_DATA_DIR", str(tmp_path))
    assert data_provenance(load_config()) == {"data_dir": str(tmp_path.resolve())}
    monkeypatch.delenv("FLARE_DATA_DIR")
    monkeypatch.chdir(tmp_path)  # no ../shared/data here
    assert data_provenance(load_config()) == {"data_dir": "Hugging Face Hub"}


def test_results_record_the_files_not_a_default(tmp_path):
    # found by review: results.json said "default (FLARE_DATA_DIR or ../shared/data)"
    data = tmp_path / "data"
    data.mkdir()
    for name in ("quy.train", "quy.validation", "quy.test"):
        write_split(data, f"{name}.jsonl")
    config = own_files(data, "languages=[quy]", f"output_dir={tmp_path / 'run'}")
    config.stage1_root.mkdir(parents=True)
    (config.stage1_root / "stage1.json").write_text('{"settings": {}}')
    result = RunResult("lora", "quy", 42, "accuracy", 50.0, 3, "none")
    write_report(config, [(Cell("lora", ("quy",), 42), [result])])
    provenance = json.loads((tmp_path / "run" / "results.json").read_text())["provenance"]
    assert provenance["files"]["quy"]["test"] == str((data / "quy.test.jsonl").resolve())
    assert "data_dir" not in provenance


def test_the_example_config_loads_and_reads_the_example_files():
    config = load_config(ROOT / "configs" / "own_files.yaml")
    assert config.languages == ["nld_Latn"] and config.data.label_names == LABELS
    config.data.files = str(ROOT / config.data.files)  # the YAML's path is relative to the root
    sizes = {
        split: len(load_examples(config, "nld_Latn", split))
        for split in ("train", "validation", "test")
    }
    assert sizes == {"train": 24, "validation": 6, "test": 9}
    assert split_file(config, "nld_Latn", "validation").name == "nld_Latn.dev.jsonl"
