"""Fault injection: ``flare experiment`` SIGKILLed all over stage 1, stage 2 and the report.

A tiny grid (a random Llama, 8 NusaX pairs, lora and flare, 3 steps per stage with a
checkpoint every step) is run once uninterrupted as a plain ``python -m flare_xlt.cli``
subprocess. Then, for each kill point, a fresh run is SIGKILLed as soon as the point is
reached (a file or folder appears), a file is truncated for some of them (a checkpoint's,
a finished run's), and the run is started again and must complete with the reference's
scores and bit-identical weights, having resumed only intact, published checkpoints.

The killed and rerun processes are forked from one warmed-up interpreter (see
``fork_server.py``): a fresh one spends seconds importing torch, and there are dozens.
Run with ``-s`` to see the summary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import transformers as tf
from recipe_tokenizer import word_tokenizer
from test_experiment import nusax_texts
from tiny_models import tiny_config

from flare_xlt.paths import default_data_dir
from flare_xlt.training import checkpoint as ckpt

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

SERVER = Path(__file__).with_name("fork_server.py")
# One thread everywhere, so sums are added up in the same order in every process.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
STAGE1, LORA, FLARE = "stage1/train", "cells/lora/javanese/seed42", "cells/flare/javanese/seed42"
CONFIG = """\
methods: [lora, flare]
languages: [javanese]
data: {max_train_examples: 8, max_validation_examples: 4, max_test_examples: 8, max_length: 48}
stage1: {max_steps: 3, batch_size: 4, save_every_steps: 1, learning_rate: 0.05}
stage2: {max_steps: 3, batch_size: 4, save_every_steps: 1, learning_rate: 0.05}
"""
RESUMED = re.compile(r"resuming from (\S+) \(step \d+\)")


# ---------------------------------------------------------------- kill points
def appeared(*patterns: str) -> Callable[[Path], bool]:
    """Reached once any of ``patterns`` (globs under the run folder) matches."""
    return lambda run: any(next(run.glob(pattern), None) is not None for pattern in patterns)


def report_lists(method: str) -> Callable[[Path], bool]:
    """Reached once results.json holds a result of ``method``."""

    def reached(run: Path) -> bool:
        try:
            results = json.loads((run / "results.json").read_text())["results"]
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return any(result["method"] == method for result in results)

    return reached


def truncate(path: Path) -> Path:
    """Cut ``path`` to 10 bytes, as a full disk or a copy cut short leaves it."""
    path.write_bytes(path.read_bytes()[:10])
    return path


def newest_checkpoint_file(train_dir: str, name: str) -> Callable[[Path], Path]:
    """Damage: truncate ``name`` in the newest checkpoint of ``train_dir``."""

    def damage(run: Path) -> Path:
        checkpoints = ckpt.list_checkpoints(run / train_dir)
        return truncate(checkpoints[max(checkpoints)] / name)

    return damage


def run_file(relative: str) -> Callable[[Path], Path]:
    """Damage: truncate the file ``relative`` to the run folder."""
    return lambda run: truncate(run / relative)


@dataclass(frozen=True)
class KillPoint:
    name: str
    reached: Callable[[Path], bool]
    damage: Callable[[Path], Path] | None = None


KILL_POINTS = [
    KillPoint("stage 1: writing checkpoint 1", appeared(f"{STAGE1}/checkpoints/*step-1")),
    KillPoint("stage 1: checkpoint 1 saved", appeared(f"{STAGE1}/checkpoints/step-1")),
    KillPoint(
        "stage 1: checkpoint 2 saved, newest adapter.safetensors truncated",
        appeared(f"{STAGE1}/checkpoints/step-2"),
        newest_checkpoint_file(STAGE1, "adapter.safetensors"),
    ),
    KillPoint(
        "stage 1: finished, train/result.json truncated",
        appeared(f"{STAGE1}/result.json"),
        run_file(f"{STAGE1}/result.json"),
    ),
    KillPoint(
        "stage 1: merging, final/adapter.safetensors truncated",
        appeared("stage1/model.partial", "stage1/model"),
        run_file(f"{STAGE1}/final/adapter.safetensors"),
    ),
    KillPoint("stage 1: stage1.json written", appeared("stage1/stage1.json")),
    KillPoint("lora: writing checkpoint 1", appeared(f"{LORA}/train/checkpoints/*step-1")),
    KillPoint(
        "lora: checkpoint 2 saved, newest optimizer.pt truncated",
        appeared(f"{LORA}/train/checkpoints/step-2"),
        newest_checkpoint_file(f"{LORA}/train", "optimizer.pt"),
    ),
    KillPoint("lora: training finished", appeared(f"{LORA}/train/result.json")),
    KillPoint("lora: saving the adapter", appeared(f"{LORA}/adapter")),
    KillPoint("lora: cell.json written", appeared(f"{LORA}/cell.json")),
    KillPoint("report after lora: results.md", appeared("results.md")),
    KillPoint("flare: checkpoint 1 saved", appeared(f"{FLARE}/train/checkpoints/step-1")),
    KillPoint(
        "flare: checkpoint 2 saved, newest trainer_state.json truncated",
        appeared(f"{FLARE}/train/checkpoints/step-2"),
        newest_checkpoint_file(f"{FLARE}/train", "trainer_state.json"),
    ),
    KillPoint("flare: cell.json written", appeared(f"{FLARE}/cell.json")),
    KillPoint("final report: results.json lists flare", report_lists("flare")),
]


# ---------------------------------------------------------------- the runs
class ForkServer:
    """The test's end of ``fork_server.py``: start ``flare`` runs, learn how they ended."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV
        )
        self.buffer = b""
        assert self.receive(timeout=120) == {"ready": True}

    def start(self, argv: list[str], log: Path) -> int:
        """Fork a child running ``flare <argv>``; its pid."""
        request = json.dumps({"argv": argv, "log": str(log)}) + "\n"
        self.process.stdin.write(request.encode())
        self.process.stdin.flush()
        return self.receive(timeout=30)["pid"]

    def ended(self) -> bool:
        """Whether the running child has ended (its exit code is waiting to be read)."""
        return b"\n" in self.buffer or bool(select.select([self.process.stdout], [], [], 0)[0])

    def receive(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                raise TimeoutError(f"no answer from the fork server within {timeout} s")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise EOFError("the fork server exited")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@dataclass
class Outcome:
    """What happened at one kill point."""

    point: str
    killed: bool = False
    survived: bool = False
    identical: bool = False
    clean: bool = False
    resumed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def fingerprint(run: Path) -> dict:
    """What must not change when a run is killed and resumed: scores, weights, losses."""
    results = json.loads((run / "results.json").read_text())["results"]
    weights = sorted(run.glob("**/final/adapter.safetensors"))
    weights.append(run / "stage1" / "model" / "model.safetensors")
    training = {}
    for record in sorted(run.glob("**/train/result.json")):
        saved = json.loads(record.read_text())["result"]
        training[str(record.relative_to(run))] = (saved["losses"], saved["history"])
    return {
        "scores": sorted(
            (r["method"], r["language"], r["seed"], r["score"], r["extra"]["scores"])
            for r in results
        ),
        "weights": {
            str(path.relative_to(run)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in weights
        },
        "training": training,
    }


def hygiene_problems(run: Path, rerun_log: str, damaged: Path | None) -> list[str]:
    """What a rerun did wrong: resumed something unpublished or damaged, left damage behind."""
    problems = []
    for resumed in RESUMED.findall(rerun_log):
        if not re.search(r"/checkpoints/step-\d+$", resumed):
            problems.append(f"resumed from {resumed}, not a published checkpoint")
        if damaged is not None and damaged.parent == Path(resumed):
            problems.append(f"resumed from the damaged {resumed}")
    if damaged is not None:
        named = rf"WARNING .*({re.escape(str(damaged.parent))}|{re.escape(str(damaged))})\b"
        if not re.search(named, rerun_log):
            problems.append(f"no warning named the damaged {damaged}")
    for root in run.glob("**/checkpoints"):
        problems += [f"left {temp}" for temp in root.glob(".tmp-*")]
        for directory in ckpt.list_checkpoints(root.parent).values():
            if (reason := ckpt.checkpoint_damage(directory)) is not None:
                problems.append(f"{directory} is damaged: {reason}")
    for final in run.glob("**/train/final"):
        if (reason := ckpt.directory_damage(final, (ckpt.WEIGHTS_FILE,))) is not None:
            problems.append(f"{final} is damaged: {reason}")
    return problems


def kill_and_rerun(server: ForkServer, point: KillPoint, argv, workdir: Path, expected: dict):
    """Kill a fresh run at ``point``, damage a file if the point says so, rerun, compare."""
    outcome = Outcome(point.name)
    run = workdir / "run"
    pid = server.start(argv(run), workdir / "killed.log")
    while not point.reached(run):
        if server.ended():
            outcome.problems.append("the run ended before reaching the kill point")
            server.receive(timeout=5)
            return outcome
        time.sleep(0.001)
    with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile: not killed
        os.kill(pid, signal.SIGKILL)
    outcome.killed = server.receive(timeout=30)["returncode"] == -signal.SIGKILL
    damaged = point.damage(run) if point.damage else None
    server.start(argv(run), workdir / "rerun.log")
    outcome.survived = server.receive(timeout=300)["returncode"] == 0
    log = (workdir / "rerun.log").read_text()
    if not outcome.survived:
        outcome.problems.append(log.strip().splitlines()[-1] if log.strip() else "no output")
        return outcome
    outcome.resumed = [str(Path(path).relative_to(run)) for path in RESUMED.findall(log)]
    outcome.identical = fingerprint(run) == expected
    outcome.problems += hygiene_problems(run, log, damaged)
    outcome.clean = not outcome.problems
    return outcome


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A tiny random Llama with a word tokenizer over NusaX texts, saved as a HF folder."""
    data_dir = default_data_dir()
    if data_dir is None:
        pytest.skip("no dataset directory (set FLARE_DATA_DIR)")
    root = tmp_path_factory.mktemp("tiny") / "llama"
    tokenizer = word_tokenizer(nusax_texts(data_dir), vocab_size=400)
    torch.manual_seed(0)
    llama = tf.LlamaForCausalLM(tiny_config("llama", vocab_size=len(tokenizer), bos_token_id=2))
    llama.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root, data_dir


def test_killed_and_damaged_runs_resume_to_the_uninterrupted_results(tiny_llama, tmp_path):
    backbone, data_dir = tiny_llama
    config = tmp_path / "experiment.yaml"
    config.write_text(f"backbone: {backbone}\n{CONFIG}")

    def argv(run: Path) -> list[str]:
        """``flare experiment`` on the tiny grid, writing into ``run``."""
        return [
            *("experiment", str(config), "--set", f"output_dir={run}"),
            *("--data-dir", str(data_dir), "--quiet"),
        ]

    started = time.monotonic()
    reference = subprocess.run(
        [sys.executable, "-m", "flare_xlt.cli", *argv(tmp_path / "reference")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = fingerprint(tmp_path / "reference")
    server = ForkServer()
    try:
        outcomes = []
        for index, point in enumerate(KILL_POINTS):
            workdir = tmp_path / f"kill-{index:02d}"
            workdir.mkdir()
            outcomes.append(kill_and_rerun(server, point, argv, workdir, expected))
    finally:
        server.close()

    print(f"\nfault injection: {len(outcomes)} kill points in {time.monotonic() - started:.0f} s")
    for outcome in outcomes:
        passed = (outcome.killed, outcome.survived, outcome.identical, outcome.clean)
        flags = "".join(mark if ok else "-" for mark, ok in zip("KSIC", passed, strict=True))
        resumed = f" (resumed {', '.join(outcome.resumed)})" if outcome.resumed else ""
        print(f"  [{flags}] {outcome.point}{resumed}")
        print("".join(f"        {problem}\n" for problem in outcome.problems), end="")
    counts = {
        "tried": len(outcomes),
        "killed": sum(o.killed for o in outcomes),
        "survived": sum(o.survived for o in outcomes),
        "identical": sum(o.identical for o in outcomes),
        "clean": sum(o.clean for o in outcomes),
    }
    print("  (K killed, S rerun survived, I results identical, C nothing corrupt reused)")
    print("  " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    assert counts["tried"] >= 10
    assert set(counts.values()) == {counts["tried"]}, counts
