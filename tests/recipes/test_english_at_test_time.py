"""Which English a grid reads at test time: human, machine (a translated file) or none.

One training serves every side: the cells of a grid rerun with another
``data.english_side`` are evaluated again from the finished adapter, not retrained.
Own files and a tiny Llama; no downloads.
"""

import json

import pytest
from own_sentiment import one_step_grid, sentiment_rows, write_jsonl
from typer.testing import CliRunner

from flare_xlt.cli import app
from flare_xlt.errors import FlareError
from flare_xlt.recipes import load_config, run_experiment
from flare_xlt.recipes.data import load_examples
from flare_xlt.training.fit import fit as real_fit


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Own files, a tiny Llama, a machine-translated test file and a one-step grid."""
    root = tmp_path_factory.mktemp("english_side")
    overrides = one_step_grid(root)
    machine = root / "machine"
    machine.mkdir()
    write_jsonl(machine / "javanese.test.jsonl", sentiment_rows(6, "I hate this film {i}"))
    return {"root": root, "overrides": overrides, "machine": machine}


def config_for(setup, *extra):
    return load_config(overrides=[*setup["overrides"], *extra])


def machine_side(setup):
    template = f"{setup['machine']}/{{language}}.test.jsonl"
    return ["data.english_side=machine", f"data.machine_english={template}"]


def test_machine_english_replaces_the_test_english_only(setup):
    config = config_for(setup, *machine_side(setup))
    test = load_examples(config, "javanese", "test")
    assert [e.source for e in test] == [(f"I hate this film {i}",) for i in range(6)]
    train = load_examples(config, "javanese", "train")
    assert train[0].source == ("I like this film number 0",)  # training reads the human English


def test_one_training_serves_every_english_side(setup, monkeypatch):
    fits = []

    def counting_fit(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        fits.append(result.global_step)
        return result

    monkeypatch.setattr("flare_xlt.recipes.stage2.fit", counting_fit)
    methods = "methods=[flare, input_fusion]"
    human = run_experiment(config_for(setup, methods, "report_dir=" + str(setup["root"] / "h")))
    trained = list(fits)
    assert len(trained) == 2
    machine = run_experiment(
        config_for(setup, methods, *machine_side(setup), f"report_dir={setup['root'] / 'm'}")
    )
    none = run_experiment(
        config_for(
            setup, "methods=[flare]", "data.english_side=none", f"report_dir={setup['root'] / 'n'}"
        )
    )
    cell = setup["root"] / "run" / "cells" / "flare" / "javanese" / "seed42"
    assert sorted(p.name for p in cell.glob("cell*.json")) == [
        "cell.json",
        "cell.machine.json",
        "cell.none.json",
    ]
    # every later side reloaded the finished training: the same step, no new one
    assert len(fits) == 5 and fits[2:] == [trained[0], trained[1], trained[0]]
    records = {
        name: json.loads((cell / name).read_text())["results"][0]
        for name in ("cell.json", "cell.machine.json", "cell.none.json")
    }
    assert [r["english_side"] for r in records.values()] == ["human", "machine", "none"]
    seconds = {r["extra"]["train_seconds"] for r in records.values()}
    assert len(seconds) == 1  # the training the first side recorded
    for report, side in ((human, "human"), (machine, "machine"), (none, "none")):
        results = json.loads((report["root"] / "results.json").read_text())
        assert results["provenance"]["english_side_at_test"] == side
    # a rerun of each side reuses its own record
    assert run_experiment(config_for(setup, methods, f"report_dir={setup['root'] / 'h'}"))
    assert len(fits) == 5

    # the none side is the target-only evaluation of the same adapter
    sets = [arg for o in setup["overrides"] for arg in ("--set", o)]
    args = ["evaluate", "--method", "flare", "--lang", "javanese", *sets, "--quiet"]
    result = CliRunner().invoke(app, [*args, "--adapter", str(cell / "adapter"), "--target-only"])
    assert result.exit_code == 0, result.output
    assert f"macro_f1 = {records['cell.none.json']['score']:.2f}" in result.stdout


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (sentiment_rows(5, "x {i}"), "has no translation of test example '5'"),
        (sentiment_rows(7, "x {i}"), "holds 1 examples the my_sentiment test set lacks (e.g. '6')"),
        (
            [
                dict(r, target_text="other") if r["id"] == "2" else r
                for r in sentiment_rows(6, "x {i}")
            ],
            "example '2' has another target text or label than the my_sentiment test set",
        ),
    ],
)
def test_a_machine_file_of_another_test_set_is_refused(setup, tmp_path, records, message):
    write_jsonl(tmp_path / "javanese.test.jsonl", records)
    template = f"{tmp_path}/{{language}}.test.jsonl"
    config = config_for(setup, "data.english_side=machine", f"data.machine_english={template}")
    with pytest.raises(FlareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_examples(config, "javanese", "test")


def test_a_missing_machine_file_names_the_fix(setup, tmp_path):
    template = f"{tmp_path}/{{language}}.test.jsonl"
    config = config_for(setup, "data.english_side=machine", f"data.machine_english={template}")
    with pytest.raises(FlareError, match="make it with flare translate --lang javanese"):
        load_examples(config, "javanese", "test")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["data.english_side=oracle"], "choose one of human, machine, none"),
        (["data.machine_english=m/{language}.jsonl"], "read only with data.english_side=machine"),
        (
            ["data.english_side=machine", "data.machine_english=m.jsonl"],
            "needs a {language} placeholder",
        ),
        (
            ["data.english_side=none", "methods=[flare, input_fusion, x_mixup]"],
            "input_fusion, x_mixup read the English at test time and cannot drop it",
        ),
    ],
)
def test_english_side_settings_are_checked_at_load(setup, extra, message):
    with pytest.raises(FlareError, match=message.replace("{", r"\{").replace("}", r"\}")):
        config_for(setup, *extra)
