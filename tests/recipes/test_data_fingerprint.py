"""A finished cell records the content of every data file it read; a changed file is named."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from tiny_models import tiny_config

from flare_xlt.errors import FlareError
from flare_xlt.recipes import load_config, run_experiment
from flare_xlt.recipes.data_fingerprint import changed_files, file_fingerprint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "own_files"


@pytest.fixture
def grid(tmp_path):
    """configs/own_files.yaml on a tiny Llama, over a copy of the example files."""
    data = tmp_path / "data"
    shutil.copytree(EXAMPLE, data)
    lines = [line for path in data.glob("*.jsonl") for line in path.read_text().splitlines()]
    texts = [json.loads(line)["target_text"] for line in lines]
    tokenizer = word_tokenizer([*texts, "Label: negative neutral positive"], vocab_size=300)
    torch.manual_seed(0)
    llama = tf.LlamaForCausalLM(tiny_config("llama", vocab_size=len(tokenizer), bos_token_id=2))
    llama.save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    overrides = [
        f"backbone={tmp_path / 'llama'}",
        "methods=[zero_shot,lora]",
        "stage1.max_steps=1",
        "stage2.max_steps=1",
    ]
    paths = {
        "output_dir": str(tmp_path / "run"),
        "data.files": str(data / "{language}.{split}.jsonl"),
    }
    return load_config(ROOT / "configs" / "own_files.yaml", overrides, values=paths), data


def edit_last_target(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[-1]["target_text"] += " (edited)"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.parametrize(("split", "refused"), [("test", "zero_shot"), ("train", "lora")])
def test_a_changed_data_file_makes_the_finished_cell_refused_by_name(grid, split, refused):
    # Found by a hostile-user pass: the cell recorded the path, not the content, so after an
    # edit of the test (or train) file the old scores were reported again with exit 0.
    config, data = grid
    run_experiment(config, progress=False)
    run_experiment(config, progress=False)  # unchanged data: finished cells are reused
    edited = data / f"nld_Latn.{split}.jsonl"
    edit_last_target(edited)
    with pytest.raises(FlareError, match=rf"{refused}/.*cell\.json was computed from other data: "
                                         rf".*{edited.name} changed since"):  # fmt: skip
        run_experiment(config, progress=False)


def test_a_moved_data_directory_with_the_same_files_stays_valid(grid, tmp_path):
    config, data = grid
    run_experiment(config, progress=False)
    moved = shutil.move(data, tmp_path / "elsewhere")
    config.data.files = str(Path(moved) / "{language}.{split}.jsonl")
    run_experiment(config, progress=False)


def test_an_upgraded_cell_without_data_fingerprints_is_tied_to_where_its_data_lie(grid, tmp_path):
    # cells computed before data fingerprints, upgraded by `flare upgrade-records`, carry
    # "data": null: their files cannot be compared, so their location still is
    config, data = grid
    run_experiment(config, progress=False)
    cells = sorted(config.root.rglob("cell.json"))
    for path in cells:
        record = json.loads(path.read_text())
        record["data"] = None
        path.write_text(json.dumps(record))
    run_experiment(config, progress=False)  # same place: reused
    moved = shutil.move(data, tmp_path / "elsewhere")
    config.data.files = str(Path(moved) / "{language}.{split}.jsonl")
    with pytest.raises(
        FlareError, match=r"cell\.json was produced with different settings \(data\.files\)"
    ):
        run_experiment(config, progress=False)


def test_changed_files_names_the_current_files_that_differ(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x"), b.write_text("y")
    saved = {"jav/test": [file_fingerprint(str(a)), file_fingerprint(str(b))]}
    assert changed_files(saved, saved) == []
    b.write_text("z")
    current = {"jav/test": [file_fingerprint(str(a)), file_fingerprint(str(b))]}
    assert changed_files(saved, current) == [str(b)]
    assert changed_files(saved, {"jav/test": current["jav/test"][:1]}) == [str(a)]
    assert changed_files({}, current) == []  # a split not read before is not compared
