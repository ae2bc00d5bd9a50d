"""Real 2-process DDP on CPU (torchrun, gloo): synchronised weights, rank-0-only checkpoints.

``accelerate launch --cpu --num_processes 2`` is not used: on this machine it silently
starts ONE process (accelerate's multi-CPU launcher needs mpirun and a hostfile).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import chain
from pathlib import Path

import pytest
import torch
from ddp_script import DDP_SETTINGS
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("ddp_script.py")
CHECKPOINT_FILES = {
    "adapter.safetensors",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pt",
    "trainer_state.json",
}


@pytest.mark.slow
def test_two_process_ddp_trains_in_sync_and_only_rank_0_writes(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free rendezvous port: other test runs may share the machine
        "--nproc_per_node",
        "2",
        str(SCRIPT),
        str(tmp_path),
        "--processes",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    # Different data on each rank (DistributedSampler-style shards) ...
    keys = [json.loads((tmp_path / f"rank{r}-keys.json").read_text()) for r in (0, 1)]
    assert len(keys[0]) == len(keys[1]) == DDP_SETTINGS["max_steps"]
    epoch = [set(chain(*k[:4])) for k in keys]  # 24 examples / (2 ranks x 3) = 4 batches
    assert not epoch[0] & epoch[1] and len(epoch[0] | epoch[1]) == 24
    # ... yet identical weights: gradients were averaged across the two processes.
    weights = [load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1)]
    final = load_file(tmp_path / "run" / "final" / "adapter.safetensors")
    assert weights[0].keys() == weights[1].keys() == final.keys()
    for name in final:
        assert torch.equal(weights[0][name], weights[1][name]), name
        assert torch.equal(weights[0][name], final[name]), name

    run = tmp_path / "run"
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    expected = {f"checkpoints/step-{s}/{f}" for s in (4, 6) for f in CHECKPOINT_FILES}
    manifests = {f"checkpoints/step-{s}/manifest.json" for s in (4, 6)} | {"final/manifest.json"}
    assert files == expected | manifests | {"final/adapter.safetensors", "result.json"}
    state = json.loads((run / "checkpoints" / "step-6" / "trainer_state.json").read_text())
    assert state["num_processes"] == 2
    assert len(torch.load(run / "checkpoints" / "step-6" / "rng_state.pt")) == 2  # per process
    result = json.loads((run / "result.json").read_text())["result"]
    assert result["global_step"] == 6 and len(result["losses"]) == 6
