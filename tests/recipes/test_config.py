"""Experiment configs: YAML + dotted overrides, validated up front with the bad key named."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.recipes import ExperimentConfig, demo_settings, grid, load_config


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: t\ntask: xnli\nlanguages: [sw, ur]\nmethods: [lora, flare]\nseeds: [1, 2]\n"
        "stage2:\n  learning_rate: 2e-4\n  batch_size: 4\nadapter:\n  fusion: mul\n"
    )
    config = load_config(path, ["stage2.batch_size=16", "adapter.r=4", "data.max_length=32"])
    assert config.stage2.learning_rate == pytest.approx(2e-4)
    assert (config.stage2.batch_size, config.adapter.r, config.data.max_length) == (16, 4, 32)
    assert config.adapter.fusion == "mul" and config.seeds == [1, 2]
    assert str(config.root).endswith("runs/t")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["stage2.learnig_rate=1"], "stage2.learnig_rate: unknown key; valid keys: batch_size"),
        (["bogus=1"], "bogus: unknown key"),
        (["methods=[flare, lorra]"], "unknown method 'lorra'"),
        (["methods=[x_mixup]", "task=xquad"], "x_mixup supports classification tasks only"),
        (["languages=[klingon]"], "klingon"),
        (["task=imdb"], "imdb"),
        (["stage2.batch_size=many"], "stage2.batch_size: expected int"),
        (["stage1.learning_rate=0"], "stage1: TrainArgs.learning_rate must be > 0, got 0"),
        (["adapter.fusion=concat"], "fusion='concat' is not valid"),
        (["data.english_side=oracle"], "english_side='oracle'"),
        (["stage2=3"], "stage2: expected a mapping"),
        (["noequals"], "must look like key.sub=value"),
        # found by review: these passed, then crashed late or gave silently wrong results
        (["eval_batch_size=0"], "eval_batch_size=0: use at least 1"),
        (["data.max_length=0"], "data: max_length=0: use at least 8 tokens"),
        (["data.max_test_examples=-1"], "data: max_test_examples=-1: use at least 1"),
        (["data.max_validation_examples=0"], "data: max_validation_examples=0"),
        (
            ["task=mine", "data.files=d/{lang}.{split}.csv", "data.label_names=[a, b]"],
            r"unknown placeholder lang; only \{language\} and \{split\}",
        ),
        (
            [
                "task=mine",
                "data.files=d.{split}.csv",
                "data.label_names=[a]",
                "languages=[jav, sun]",
            ],
            r"needs a \{language\} placeholder: 2 languages would all read the same file",
        ),
        (["languages=[javanese, jav]"], "languages lists jav more than once"),
        (["methods=[lora, flare, lora]"], "methods lists lora more than once"),
        (["seeds=[42, 42]"], "seeds lists 42 more than once"),
    ],
)
def test_bad_config_names_the_key(overrides, message):
    with pytest.raises(FlareError, match=message):
        load_config(overrides=overrides)


@pytest.mark.parametrize("name", ["2024-06-01", "data #2", "null", "a: b", "[x]"])
def test_path_values_are_not_read_as_yaml(name):
    # `--data-dir "data #2"` used to become `data` and `--output-dir null` the default.
    config = load_config(values={"data.data_dir": name, "output_dir": name})
    assert config.data.data_dir == name and config.output_dir == name


def test_cli_path_options_are_paths(tmp_path):
    missing = tmp_path / "data #2"  # YAML reads "data #2" as "data" plus a comment
    (tmp_path / "x.yaml").write_text(f"output_dir: {tmp_path / 'run'}\n")
    done = subprocess.run(
        [sys.executable, "-m", "flare_xlt.cli", "experiment", "--data-dir", str(missing), "x.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(f"data directory {missing} does not exist")


def test_an_override_that_is_not_yaml_names_itself():
    with pytest.raises(FlareError, match=r"override 'stage2.learning_rate=\[1e-4'.*not valid YAML"):
        load_config(overrides=["stage2.learning_rate=[1e-4"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FlareError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(FlareError, match="not valid YAML"):
        load_config(bad)


def test_grid_shares_seedless_methods_and_joint_training():
    config = load_config(
        overrides=["methods=[zero_shot, flare]", "languages=[jav, sun]", "seeds=[1, 2]"]
    )
    names = [cell.name for cell in grid(config)]
    assert names == [  # complete rows first: seed, then language, then method
        "zero_shot/jav/seed1",
        "flare/jav/seed1",
        "zero_shot/sun/seed1",
        "flare/sun/seed1",
        "flare/jav/seed2",
        "flare/sun/seed2",
    ]
    config.joint_languages = True
    assert [c.name for c in grid(config)] == [
        "zero_shot/jav/seed1",
        "zero_shot/sun/seed1",
        "flare/jav+sun/seed1",
        "flare/jav+sun/seed2",
    ]


def test_demo_settings_are_a_valid_config():
    config = load_config(base=demo_settings(), overrides=["seeds=[7]"])
    assert isinstance(config, ExperimentConfig) and config.seeds == [7]
    assert config.methods == [
        "zero_shot",
        "translate_test",
        "lora",
        "input_fusion",
        "flare",
        "flare_mt",
    ]


def test_committed_cells_give_their_results_under_the_current_record_schema(tmp_path):
    # Every committed grid's records are in the current schema (`flare upgrade-records`
    # rewrote the older ones; test_experiment checks that path on a tiny grid): each
    # finished cell is reused with the results it holds. Run on a copy of the records.
    from flare_xlt.evaluate import RunResult
    from flare_xlt.recipes.experiment import grid
    from flare_xlt.recipes.stage1 import stage1_settings
    from flare_xlt.recipes.stage2 import load_cell_results, result_path

    root = Path(__file__).resolve().parents[2]
    grids = [r.with_name("config.json") for r in sorted((root / "results").rglob("results.json"))]
    copies = []
    for record in (path for path in grids if path.is_file()):  # combined tables have none
        saved = json.loads(record.read_text())
        copy = tmp_path / saved["output_dir"]
        for path in (root / saved["output_dir"]).rglob("*.json"):
            (copy / path.relative_to(root / saved["output_dir"])).parent.mkdir(
                parents=True, exist_ok=True
            )
            shutil.copyfile(path, copy / path.relative_to(root / saved["output_dir"]))
        copies.append(load_config(record, values={"output_dir": str(copy)}))
    finished = [
        (config, cell)
        for config in copies
        for cell in grid(config)
        if result_path(config, cell).is_file()  # the record of the grid's test-time English
    ]
    assert len(finished) >= 66  # Table 1 alone has 66 cells
    for config, cell in finished:
        saved = json.loads(result_path(config, cell).read_text())["results"]
        assert load_cell_results(config, cell) == [RunResult.from_dict(r) for r in saved]
    stage1s = sorted(tmp_path.rglob("stage1.json"))
    assert stage1s
    current = stage1_settings(copies[0], [], [])
    for path in stage1s:  # an upgraded stage1.json holds every key stage 1 records now
        stage1 = json.loads(path.read_text())["settings"]
        assert (sorted(stage1), sorted(stage1["adapter"])) == (
            sorted(current),
            sorted(current["adapter"]),
        )
    fused_in_q = ["adapter.target_modules=[q_proj, v_proj]", "adapter.fusion_modules=[q_proj]"]
    config = load_config(root / "configs" / "nusax_gemma.yaml", fused_in_q)
    config.output_dir = str(tmp_path / "results" / "nusax_gemma")
    flare = next(cell for cell in grid(config) if cell.method == "flare")
    with pytest.raises(FlareError, match=r"adapter\.fusion_modules, adapter\.target_modules"):
        load_cell_results(config, flare)  # set, they are settings the cell did not have


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")),
    ids=lambda path: path.name,
)
def test_every_committed_config_loads(path):
    config = load_config(path)
    assert config.methods and config.languages and grid(config)
