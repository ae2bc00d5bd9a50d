"""``flare demo --fast`` end to end: real Gemma-3-270M and e5, real NusaX, every method."""

import json
import os
import subprocess
import sys

import pytest

from flare_xlt.evaluate import read_results_json
from flare_xlt.paths import default_data_dir
from flare_xlt.recipes.demo import DEMO_METHODS

pytestmark = [pytest.mark.real_model, pytest.mark.real_data, pytest.mark.slow]


def test_fast_demo_writes_a_complete_report(real_flare_home, tmp_path):
    data_dir = default_data_dir()
    if data_dir is None:
        pytest.skip("no dataset directory (set FLARE_DATA_DIR)")
    env = dict(os.environ, FLARE_HOME=str(real_flare_home), FLARE_DATA_DIR=str(data_dir))
    output = tmp_path / "demo"
    command = [sys.executable, "-m", "flare_xlt.cli", "demo", "--fast", "--quiet"]
    run = subprocess.run(
        [*command, "--output-dir", str(output)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = read_results_json(output / "results.json")
    assert sorted({r.method for r in results}) == sorted(DEMO_METHODS)
    assert {r.language for r in results} == {"javanese", "toba_batak"}
    assert all(r.metric == "macro_f1" and r.n_examples == 8 for r in results)
    payload = json.loads((output / "results.json").read_text())
    assert payload["config"]["backbone"] == "gemma-3-270m"
    assert "flare_mt" in (output / "results.md").read_text()
    assert (output / "results.png").stat().st_size > 10_000
    assert "| flare " in run.stdout  # the table is printed
