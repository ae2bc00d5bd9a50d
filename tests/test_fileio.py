"""flare_xlt.fileio: atomic writes leave the old file or the new one, and no temp files."""

from __future__ import annotations

import json

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.fileio import (
    read_json_object,
    remove_dir_atomically,
    write_dir_atomically,
    write_json_atomically,
    write_text_atomically,
)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    write_json_atomically(path, {"a": 1})
    assert read_json_object(path) == {"a": 1}

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("flare_xlt.fileio.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomically(path, "half")
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_directory_is_published_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "final"
    write_dir_atomically(target, lambda d: (d / "old.txt").write_text("old"))
    write_dir_atomically(target, lambda d: (d / "new.txt").write_text("new"))
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    remove_dir_atomically(target)
    assert list(tmp_path.iterdir()) == []


def test_a_json_value_that_is_not_an_object_is_refused(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1]")
    with pytest.raises(FlareError, match="must hold a JSON object, not list"):
        read_json_object(path)
