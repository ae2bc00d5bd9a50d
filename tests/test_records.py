"""Run records: the schema stamp, the one-line refusals, and the upgrade of schema-1 records."""

import json

import pytest
from typer.testing import CliRunner

from flare_xlt.cli import app
from flare_xlt.errors import FlareError
from flare_xlt.records import (
    RECORD_SCHEMA,
    check_record,
    differing_keys,
    upgrade_record,
    upgrade_records,
    write_record,
)

SETTINGS = {"task": "nusax_senti", "adapter": {"r": 8, "fusion_modules": None}}


def test_a_record_is_stamped_with_its_schema_and_kind_and_written_atomically(tmp_path):
    path = write_record(tmp_path / "cell.json", "cell", SETTINGS, results=[1])
    assert json.loads(path.read_text()) == {
        "schema": RECORD_SCHEMA,
        "kind": "cell",
        "settings": SETTINGS,
        "results": [1],
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.json"]  # no temp file left
    check_record(json.loads(path.read_text()), SETTINGS, path, "fix", kind="cell")


def test_differing_keys_are_named_dotted_with_the_fix(tmp_path):
    saved = json.loads(write_record(tmp_path / "r.json", "cell", SETTINGS).read_text())
    current = {"task": "nusax_senti", "adapter": {"r": 4, "fusion_modules": ["q_proj"]}}
    with pytest.raises(
        FlareError, match=r"^r\.json x \(adapter\.fusion_modules, adapter\.r\); do y$"
    ):
        check_record(saved, current, "r.json", "do y", problem="x")
    with pytest.raises(FlareError, match=r"adapter\.r: 8 -> 4"):
        check_record(saved, current, "r.json", "do y", show_values=True)
    relevant = lambda s: {k: v for k, v in s.items() if k != "adapter"}  # noqa: E731
    check_record(saved, current, "r.json", "do y", relevant=relevant)  # only the task counts
    with pytest.raises(FlareError, match=r"holds a 'cell' record, not 'stage1'"):
        check_record(saved, SETTINGS, "r.json", "do y", kind="stage1")


def test_a_key_one_record_lacks_is_named_as_differing():
    # Found while adding fusion_modules: a key missing on one side and None on the other
    # made the records unequal, but the error named no key ("different settings ()").
    saved = {"adapter": {"r": 8}, "task": "nusax_senti"}
    assert differing_keys(saved, SETTINGS) == ["adapter.fusion_modules"]
    assert differing_keys(SETTINGS, SETTINGS) == []


def test_a_record_of_an_older_schema_is_refused_in_one_line():
    old = {"settings": SETTINGS}  # schema 1: no stamp
    with pytest.raises(FlareError) as caught:
        check_record(old, SETTINGS, "x/cell.json", "delete x to compute it again", kind="cell")
    message = str(caught.value)
    assert "\n" not in message
    assert "x/cell.json was written by an older flare-xlt (record schema 1" in message
    assert "`flare upgrade-records DIR`" in message and "delete x to compute it again" in message
    with pytest.raises(FlareError, match=r"older flare-xlt .*; delete p$"):  # no upgrade offered
        check_record(old, SETTINGS, "p", "delete p", kind="source_cache")
    with pytest.raises(FlareError, match=r"written by a newer flare-xlt"):
        check_record({**old, "schema": RECORD_SCHEMA + 1}, SETTINGS, "p", "delete p")


def old_cell(settings: dict | None = None) -> dict:
    """A cell record as flare-xlt wrote it before record schemas (shims left keys out)."""
    settings = settings or {"task": "nusax_senti", "adapter": {"r": 8}, "data": {"max_length": 9}}
    return {"cell": {"method": "lora"}, "settings": settings, "results": [{"score": 1.0}]}


def test_upgrade_fills_the_keys_old_records_left_out_and_keeps_the_rest(tmp_path):
    cell = tmp_path / "cells" / "lora" / "jav" / "seed1" / "cell.machine.json"
    cell.parent.mkdir(parents=True)
    cell.write_text(json.dumps(old_cell()))
    stage1 = tmp_path / "stage1" / "stage1.json"
    stage1.parent.mkdir()
    stage1.write_text(json.dumps({"settings": {"adapter": {"r": 8}}, "train_steps": 3}))
    assert upgrade_records([tmp_path]) == [cell, stage1]
    assert json.loads(cell.read_text()) == {
        "schema": RECORD_SCHEMA,
        "kind": "cell",
        "settings": {
            "task": "nusax_senti",
            "adapter": {"r": 8, "fusion_modules": None},
            "data": {"max_length": 9, "machine_english": None},
            "quantization": None,
        },
        "cell": {"method": "lora"},
        "results": [{"score": 1.0}],
        "data": None,
    }
    upgraded = json.loads(stage1.read_text())
    assert upgraded["settings"] == {
        "adapter": {"r": 8, "target_modules": None},
        "quantization": None,
    }
    assert (upgraded["kind"], upgraded["train_steps"]) == ("stage1", 3)
    assert upgrade_records([tmp_path]) == []  # current already: nothing rewritten
    assert not upgrade_record(cell)


def test_upgrade_refuses_what_it_cannot_upgrade_and_rewrites_nothing(tmp_path):
    good = tmp_path / "a" / "cell.json"
    good.parent.mkdir()
    good.write_text(json.dumps(old_cell()))
    bad = tmp_path / "b" / "cell.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"settings": {"adapter": {"r": 8}}, "results": []}))  # no data
    with pytest.raises(FlareError, match=rf"^cannot upgrade {bad}: its settings lack the 'data'"):
        upgrade_records([tmp_path])
    assert "schema" not in json.loads(good.read_text())
    bad.write_text("{")
    with pytest.raises(FlareError, match="it is unreadable"):
        upgrade_record(bad)
    with pytest.raises(FlareError, match=r"only stage1\.json and cell"):
        upgrade_record(tmp_path / "result.json")


def test_the_cli_upgrades_the_records_under_each_folder(tmp_path):
    cell = tmp_path / "cell.json"
    cell.write_text(json.dumps(old_cell()))
    outcome = CliRunner().invoke(app, ["upgrade-records", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    assert f"upgraded {cell}" in outcome.output and "1 record(s) upgraded" in outcome.output
    assert json.loads(cell.read_text())["schema"] == RECORD_SCHEMA
