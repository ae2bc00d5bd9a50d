"""Exact resume: a run SIGKILLed after a checkpoint and restarted ends as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_script import RESUME_SETTINGS, build_dataset, build_model, collate, eval_fn
from safetensors.torch import load_file

from flare_xlt.training.args import TrainingArguments
from flare_xlt.training.loop import train

SCRIPT = Path(__file__).with_name("ddp_script.py")
# One thread in the subprocesses and here, so matrix products add up in the same order.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_script(out: Path, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), str(out), *options]
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)


def assert_same_weights(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for name in left:
        torch.testing.assert_close(left[name], right[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("group_by_length", [False, True], ids=["shuffled", "length-grouped"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, group_by_length):
    # 20 examples, batch 4, 2 accumulation steps: 3 optimizer steps per epoch (2+2+1 batches);
    # 8 steps; checkpoints at steps 2, 3 (eval), 4, 6 and 8. Batch 9 is inside step 5,
    # so the restart resumes from step 4: epoch 1 with its first 2 batches already seen.
    grouping = ["--group-by-length"] if group_by_length else []
    killed = run_script(tmp_path, "--kill-at-batch", "9", *grouping)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-3", "step-4"]
    assert not (run / "result.json").exists()

    resumed = run_script(tmp_path, *grouping)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = TrainingArguments(
            tmp_path / "reference",
            progress=False,
            group_by_length=group_by_length,
            **RESUME_SETTINGS,
        )
        reference = train(build_model(), build_dataset(20), collate, args, eval_fn=eval_fn)
    finally:
        torch.set_num_threads(threads)

    result = json.loads((run / "result.json").read_text())["result"]
    assert result["resumed_from_step"] == 4 and reference.resumed_from_step is None
    assert result["global_step"] == reference.global_step == 8
    assert result["losses"] == reference.losses  # every step's loss, bit for bit
    assert result["history"] == reference.history
    assert result["best_step"] == reference.best_step
    ref_dir = tmp_path / "reference"
    for path in ("checkpoints/step-8/adapter.safetensors", "final/adapter.safetensors"):
        assert_same_weights(load_file(run / path), load_file(ref_dir / path))
    assert_same_weights(
        load_file(tmp_path / "rank0.safetensors"), load_file(ref_dir / "final/adapter.safetensors")
    )
