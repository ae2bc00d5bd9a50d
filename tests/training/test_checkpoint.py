"""Damaged checkpoints and records: a one-line FlareError or a fallback, never a traceback."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from ddp_script import build_dataset, build_model, collate, trainable_state
from safetensors.torch import load_file

from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object
from flare_xlt.training import checkpoint as ckpt
from flare_xlt.training.args import TrainingArguments
from flare_xlt.training.loop import train

DATA = build_dataset(12)
CHECKPOINT_FILES = ("adapter.safetensors", "trainer_state.json", "optimizer.pt", "rng_state.pt")
CHECKPOINT_FILES += ("scheduler.pt",)


def arguments(tmp_path, run="run", **overrides) -> TrainingArguments:
    settings = {
        "max_steps": 4,
        "batch_size": 4,
        "learning_rate": 1e-2,
        "save_every_steps": 1,
        "keep_checkpoints": 5,
        "progress": False,
    }
    return TrainingArguments(tmp_path / run, **{**settings, **overrides})


def truncate(path, keep: int = 10) -> None:
    """Cut ``path`` to its first ``keep`` bytes, as a full disk or a killed copy leaves it."""
    path.write_bytes(path.read_bytes()[:keep])


def unfinish(output_dir) -> None:
    """Make a finished run look killed after its last checkpoint."""
    (output_dir / "result.json").unlink()
    shutil.rmtree(output_dir / "final")


def no_training(model, batch):
    raise AssertionError("a step that was checkpointed intact was trained again")


class Metrics:
    """An eval_fn replaying fixed metric values, one per call."""

    def __init__(self, *values: float):
        self.values = list(values)

    def __call__(self, model) -> float:
        return self.values.pop(0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 4-step run: its result and final weights."""
    root = tmp_path_factory.mktemp("reference")
    result = train(build_model(), DATA, collate, arguments(root))
    return result, load_file(root / "run" / "final" / "adapter.safetensors")


def assert_same_weights(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    assert all(torch.equal(left[name], right[name]) for name in left)


@pytest.mark.parametrize("damaged_file", CHECKPOINT_FILES)
def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(
    tmp_path, reference, damaged_file, caplog
):
    train(build_model(), DATA, collate, arguments(tmp_path))
    run = tmp_path / "run"
    unfinish(run)
    truncate(run / "checkpoints" / "step-4" / damaged_file)
    with caplog.at_level(logging.WARNING, logger="flare_xlt"):
        resumed = train(build_model(), DATA, collate, arguments(tmp_path))
    assert resumed.resumed_from_step == 3
    assert f"step-4, which is damaged: {damaged_file} has 10 bytes, its manifest" in caplog.text
    expected, expected_weights = reference
    assert (resumed.losses, resumed.global_step) == (expected.losses, expected.global_step)
    assert_same_weights(load_file(run / "final" / "adapter.safetensors"), expected_weights)
    assert ckpt.checkpoint_damage(run / "checkpoints" / "step-4") is None  # written again


def test_a_damaged_best_checkpoint_makes_the_checkpoints_that_need_it_unusable(tmp_path, caplog):
    # The newest checkpoints are intact but their best weights (step 2) are not: finishing
    # from them would load the damaged file, so the run goes back to before step 2.
    metrics = (0.5, 0.9, 0.7, 0.6)
    args = arguments(tmp_path, eval_every_steps=1)
    first = train(build_model(), DATA, collate, args, eval_fn=Metrics(*metrics))
    run = tmp_path / "run"
    final = load_file(run / "final" / "adapter.safetensors")
    unfinish(run)
    truncate(run / "checkpoints" / "step-2" / "adapter.safetensors")
    with caplog.at_level(logging.WARNING, logger="flare_xlt"):
        again = train(build_model(), DATA, collate, args, eval_fn=Metrics(*metrics[1:]))
    unusable = "step-4, which cannot be resumed: the best checkpoint it refers to, step-2, is"
    assert f"{unusable} damaged: adapter.safetensors has 10 bytes" in caplog.text
    assert again.resumed_from_step == 1 and again.best_step == first.best_step == 2
    assert again.losses == first.losses
    assert_same_weights(load_file(run / "final" / "adapter.safetensors"), final)


def test_no_intact_checkpoint_is_one_line_naming_the_folder_to_delete(tmp_path):
    train(build_model(), DATA, collate, arguments(tmp_path, max_steps=2))
    run = tmp_path / "run"
    unfinish(run)
    for step in (1, 2):
        truncate(run / "checkpoints" / f"step-{step}" / "optimizer.pt")
    with pytest.raises(FlareError) as error:
        train(build_model(), DATA, collate, arguments(tmp_path, max_steps=2))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"no checkpoint in {run / 'checkpoints'} can be resumed: delete")
    assert "step-2 is damaged: optimizer.pt has 10 bytes" in message
    assert (run / "checkpoints" / "step-1").is_dir()  # nothing deleted for the user


def test_a_checkpoint_written_before_manifests_existed_is_refused(tmp_path):
    train(build_model(), DATA, collate, arguments(tmp_path, max_steps=2))
    run = tmp_path / "run"
    unfinish(run)
    for step in (1, 2):
        (run / "checkpoints" / f"step-{step}" / ckpt.MANIFEST_FILE).unlink()
    with pytest.raises(FlareError, match=r"delete it to train .* has no manifest\.json"):
        train(build_model(), DATA, collate, arguments(tmp_path, max_steps=2))


@pytest.mark.parametrize("damaged", ["result.json", "final/adapter.safetensors"])
def test_a_damaged_finished_run_is_finished_again_from_its_last_checkpoint(
    tmp_path, reference, damaged, caplog
):
    # Nothing is retrained (the last checkpoint holds the finished state) and nothing lost.
    first = train(build_model(), DATA, collate, arguments(tmp_path))
    run = tmp_path / "run"
    truncate(run / damaged)
    model = build_model()
    with caplog.at_level(logging.WARNING, logger="flare_xlt"):
        again = train(model, DATA, collate, arguments(tmp_path), loss_fn=no_training)
    assert f"{run / damaged.split('/')[0]} " in caplog.text
    assert "finishing the run again from its newest usable checkpoint" in caplog.text
    assert again.resumed_from_step == 4
    assert (again.losses, again.best_step) == (first.losses, first.best_step)
    _, expected_weights = reference
    assert_same_weights(trainable_state(model), expected_weights)
    assert_same_weights(load_file(run / "final" / "adapter.safetensors"), expected_weights)
    # the rewritten records are trusted again: the run is returned as finished
    assert train(build_model(), DATA, collate, arguments(tmp_path), loss_fn=no_training) == again


def test_a_crash_while_removing_a_checkpoint_leaves_no_half_checkpoint(tmp_path, monkeypatch):
    train(build_model(), DATA, collate, arguments(tmp_path, max_steps=2))
    run = tmp_path / "run"

    def crash_after_one_file(path):
        next(p for p in sorted(path.iterdir()) if p.is_file()).unlink()
        raise KeyboardInterrupt  # killed half-way through deleting the folder

    monkeypatch.setattr(ckpt.shutil, "rmtree", crash_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        ckpt.prune_checkpoints(run, keep=1, protect=None)
    monkeypatch.undo()
    assert list(ckpt.list_checkpoints(run)) == [2]
    ckpt.remove_stale_temp_dirs(run)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2"]


def test_undecodable_json_is_a_one_line_error(tmp_path):
    path = tmp_path / "cell.json"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(FlareError, match=r"cell\.json is not valid UTF-8 JSON") as error:
        read_json_object(path)
    assert "\n" not in str(error.value)
