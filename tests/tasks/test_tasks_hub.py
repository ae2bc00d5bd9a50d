"""Hub loading: without network access the error says what to do instead."""

from __future__ import annotations

import pytest

from flare_xlt.errors import FlareError
from flare_xlt.tasks import load_split


@pytest.fixture
def offline(monkeypatch):
    datasets = pytest.importorskip("datasets")
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_offline_hub_load_explains_the_alternatives(offline, monkeypatch, tmp_path):
    monkeypatch.delenv("FLARE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data here, so "auto" goes to the hub
    with pytest.raises(FlareError) as info:
        load_split("nusax_senti", "jav", "train")
    message = str(info.value)
    assert "indonlp/NusaX-senti" in message and "could not be reached" in message
    assert "--data-dir" in message and "FLARE_DATA_DIR" in message


def test_hub_argument_checks():
    with pytest.raises(FlareError, match="hub has no machine-translated"):
        load_split("xnli", "sw", "test", english_side="machine", source="hub")
    with pytest.raises(FlareError, match="source must be"):
        load_split("xnli", "sw", "test", source="web")
