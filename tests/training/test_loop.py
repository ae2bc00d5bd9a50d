"""The training engine in one process: arguments, checkpoints, early stopping, divergence."""

from __future__ import annotations

import json
import logging
import math
import random
from itertools import chain

import numpy as np
import pytest
import torch
from ddp_script import RecordingLoss, build_dataset, build_model, collate, trainable_state
from safetensors.torch import load_file

from flare_xlt.errors import FlareError
from flare_xlt.training.args import TrainingArguments
from flare_xlt.training.checkpoint import (
    capture_rng_state,
    load_trainable_weights,
    restore_rng_state,
    write_manifest,
)
from flare_xlt.training.loop import TrainingDiverged, train

DATA = build_dataset(12)


def arguments(tmp_path, **overrides) -> TrainingArguments:
    settings = {"max_steps": 4, "batch_size": 4, "learning_rate": 1e-2, "progress": False}
    return TrainingArguments(tmp_path / "run", **{**settings, **overrides})


def checkpoint_steps(output_dir) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (output_dir / "checkpoints").glob("step-*"))


class Metrics:
    """An eval_fn replaying fixed metric values, one per call."""

    def __init__(self, *values: float):
        self.values = list(values)

    def __call__(self, model) -> float:
        assert not model.training and not torch.is_grad_enabled()
        torch.rand(3)  # eval's random numbers must not change training's
        return self.values.pop(0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("learning_rate", 0.0),
        ("max_steps", 0),
        ("batch_size", -1),
        ("gradient_accumulation_steps", 0),
        ("warmup_ratio", 1.0),
        ("weight_decay", -0.1),
        ("max_grad_norm", 0.0),
        ("early_stopping_patience", 0),
        ("keep_checkpoints", 0),
        ("mixed_precision", "fp8"),
    ],
)
def test_arguments_are_validated(tmp_path, name, value):
    with pytest.raises(FlareError, match=name):
        TrainingArguments(tmp_path, **{name: value})


def test_trains_and_saves_only_trainable_parameters(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="flare_xlt")
    model = build_model()
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    start = trainable_state(model)
    stale = tmp_path / "run" / "checkpoints" / ".tmp-step-9"  # a save killed half-way
    stale.mkdir(parents=True)
    (stale / "trainer_state.json").write_text("{")
    loss_fn = RecordingLoss()

    result = train(model, DATA, collate, arguments(tmp_path, log_every_steps=2), loss_fn=loss_fn)

    assert (result.global_step, result.resumed_from_step, result.best_step) == (4, None, None)
    assert result.epochs_completed == pytest.approx(4 / 3)
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)
    assert not stale.exists()
    # non-tensor batch values reach the loss unchanged
    assert all(isinstance(k, str) for keys in loss_fn.keys for k in keys)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            assert torch.equal(param, frozen[name]), name
    assert any(not torch.equal(p, start[n]) for n, p in trainable_state(model).items())
    saved = load_file(tmp_path / "run" / "final" / "adapter.safetensors")
    assert saved.keys() == start.keys()
    for name, tensor in trainable_state(model).items():
        assert torch.equal(saved[name], tensor)
    lines = [r.getMessage() for r in caplog.records]
    # the rate step 2 trained with (warmup step 1 at 0, then 1e-2 decaying), not step 3's
    assert any(line.startswith("step 2 | epoch 0.67 | loss ") for line in lines)
    assert any(line.startswith("step 2 |") and line.endswith("| lr 1.000e-02") for line in lines)
    assert any(line.startswith("step 4 |") for line in lines)


def test_epoch_order_is_set_by_the_seed(tmp_path):
    orders = []
    for run, seed in (("a", 1), ("b", 1), ("c", 2)):
        loss_fn = RecordingLoss()
        args = arguments(tmp_path / run, seed=seed, max_steps=6)
        train(build_model(), DATA, collate, args, loss_fn=loss_fn)
        orders.append(loss_fn.keys)
    assert orders[0] == orders[1] != orders[2]
    first, second = orders[0][:3], orders[0][3:]
    assert first != second  # a new shuffle each epoch ...
    everything = sorted(e["key"] for e in DATA)
    assert sorted(chain(*first)) == sorted(chain(*second)) == everything


def test_finished_run_is_returned_without_training(tmp_path):
    first = train(build_model(), DATA, collate, arguments(tmp_path))
    trained = load_file(tmp_path / "run" / "final" / "adapter.safetensors")
    model = build_model()

    def no_training(model, batch):
        raise AssertionError("a finished run was trained again")

    again = train(model, DATA, collate, arguments(tmp_path), loss_fn=no_training)

    assert again == first
    for name, tensor in trainable_state(model).items():
        assert torch.equal(tensor, trained[name])
    with pytest.raises(FlareError, match=r"learning_rate: 0.01 -> 0.001"):
        train(build_model(), DATA, collate, arguments(tmp_path, learning_rate=1e-3))


def test_other_run_settings_refuse_a_checkpoint_and_a_finished_run(tmp_path):
    # Found by review: only the TrainArgs were fingerprinted, so a cell killed mid-training
    # and rerun with another data.max_length resumed the old run's checkpoint.
    settings = {"data": {"max_length": 128}, "adapter": {"fusion": "add_relu"}}
    longer = {"data": {"max_length": 256}, "adapter": {"fusion": "add_relu"}}
    args = arguments(tmp_path, save_every_steps=2, run_settings=settings)
    train(build_model(), DATA, collate, args)
    with pytest.raises(FlareError, match=r"run_settings\.data\.max_length: 128 -> 256"):
        train(build_model(), DATA, collate, arguments(tmp_path, run_settings=longer))
    (tmp_path / "run" / "result.json").unlink()  # as if killed after its last checkpoint
    with pytest.raises(FlareError, match=r"step-4 belongs to a run with other settings"):
        train(build_model(), DATA, collate, arguments(tmp_path, run_settings=longer))
    resumed = train(build_model(), DATA, collate, args)
    assert resumed.resumed_from_step == 4


def test_a_finished_run_serves_any_process_count(tmp_path):
    # A cell finished on 2 GPUs but killed before its cell.json must not be refused when
    # rerun on 1: nothing is resumed, the final weights are only loaded.
    first = train(build_model(), DATA, collate, arguments(tmp_path))
    record = tmp_path / "run" / "result.json"
    saved = json.loads(record.read_text())
    saved["settings"]["num_processes"] = 2
    record.write_text(json.dumps(saved))
    assert train(build_model(), DATA, collate, arguments(tmp_path)) == first


def test_a_launcher_that_changes_gradient_accumulation_is_refused(tmp_path, monkeypatch):
    # accelerate takes ACCELERATE_GRADIENT_ACCUMULATION_STEPS (set by `accelerate launch
    # --gradient_accumulation_steps`) over our value: step counts and resume points were wrong.
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "2")
    with pytest.raises(FlareError, match="the launcher set 2 gradient accumulation steps"):
        train(build_model(), DATA, collate, arguments(tmp_path))


def test_nan_loss_stops_before_checkpointing_the_bad_step(tmp_path):
    def nan_at_step_3(model, batch):
        nan_at_step_3.calls += 1
        loss = model(**batch).loss
        return loss * float("nan") if nan_at_step_3.calls == 3 else loss

    nan_at_step_3.calls = 0
    args = arguments(tmp_path, save_every_steps=1, keep_checkpoints=5)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 3 .*Lower the learning_rate"):
        train(build_model(), DATA, collate, args, loss_fn=nan_at_step_3)

    run = tmp_path / "run"
    assert checkpoint_steps(run) == [1, 2]
    assert not (run / "final").exists() and not (run / "result.json").exists()
    state = json.loads((run / "checkpoints" / "step-2" / "trainer_state.json").read_text())
    assert state["loop"]["global_step"] == 2
    # a changed setting is refused; the same settings resume from the last good step
    with pytest.raises(FlareError, match="learning_rate"):
        train(build_model(), DATA, collate, arguments(tmp_path, learning_rate=1e-3))
    result = train(build_model(), DATA, collate, args)
    assert (result.resumed_from_step, result.global_step) == (2, 4)


def test_a_loss_that_is_nan_from_the_start_says_no_checkpoint_exists(tmp_path):
    def nan_loss(model, batch):
        return model(**batch).loss * float("nan")

    model = build_model().eval()
    with pytest.raises(TrainingDiverged, match=r"it, none was written before\. Lower"):
        train(model, DATA, collate, arguments(tmp_path), loss_fn=nan_loss)
    assert not model.training  # the caller's mode is restored on failure too


def test_early_stopping_restores_the_best_weights(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="flare_xlt")
    model = build_model()
    args = arguments(
        tmp_path, max_steps=20, eval_every_steps=1, early_stopping_patience=2, keep_checkpoints=1
    )
    result = train(model, DATA, collate, args, eval_fn=Metrics(0.5, 0.9, 0.7, 0.6, 0.8))

    assert result.stopped_early and result.global_step == 4
    assert (result.best_metric, result.best_step) == (0.9, 2)
    assert [h["step"] for h in result.history] == [1, 2, 3, 4]
    run = tmp_path / "run"
    assert checkpoint_steps(run) == [2, 4]  # the newest one plus the best
    best = load_file(run / "checkpoints" / "step-2" / "adapter.safetensors")
    last = load_file(run / "checkpoints" / "step-4" / "adapter.safetensors")
    final = load_file(run / "final" / "adapter.safetensors")
    for name, tensor in trainable_state(model).items():
        assert torch.equal(tensor, best[name]) and torch.equal(final[name], best[name])
    assert any(not torch.equal(best[n], last[n]) for n in best)
    assert any(
        "eval 0.6000 | best 0.9000 at step 2 | stopping early" in r.getMessage()
        for r in caplog.records
    )


def test_evaluation_defaults_to_each_epoch_end_and_the_last_step(tmp_path):
    args = arguments(tmp_path, max_steps=5)  # 3 steps per epoch
    result = train(build_model(), DATA, collate, args, eval_fn=Metrics(1.0, 2.0))
    assert [h["step"] for h in result.history] == [3, 5]
    assert result.best_step == 5


def test_eval_fn_does_not_change_the_training_trajectory(tmp_path):
    plain = train(build_model(), DATA, collate, arguments(tmp_path / "a"))
    model = build_model()
    args = arguments(tmp_path / "b", eval_every_steps=1)
    evaluated = train(model, DATA, collate, args, eval_fn=Metrics(4.0, 3.0, 2.0, 1.0))
    assert evaluated.losses == plain.losses


def test_load_trainable_weights_checks_the_model(tmp_path):
    train(build_model(), DATA, collate, arguments(tmp_path, max_steps=1))
    path = tmp_path / "run" / "final" / "adapter.safetensors"
    model = build_model()
    load_trainable_weights(model, path)
    assert all(torch.equal(t, load_file(path)[n]) for n, t in trainable_state(model).items())
    with pytest.raises(FlareError, match="does not match"):
        load_trainable_weights(torch.nn.Linear(2, 2), path)
    with pytest.raises(FlareError, match="no trainable-weights file"):
        load_trainable_weights(model, tmp_path / "missing.safetensors")


def test_rng_state_round_trip():
    state = capture_rng_state()
    expected = (torch.rand(2), random.random(), np.random.rand())
    restore_rng_state(state)
    again = (torch.rand(2), random.random(), np.random.rand())
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]


def test_early_stopping_needs_an_eval_fn(tmp_path):
    with pytest.raises(FlareError, match="eval_fn"):
        train(build_model(), DATA, collate, arguments(tmp_path, early_stopping_patience=1))


def test_length_grouped_batches_pad_less_and_stay_seeded(tmp_path):
    lengths = [2 + (7 * i) % 23 for i in range(96)]  # 2..24 tokens, scrambled
    data = [
        dict(example, input_ids=torch.randint(3, 64, (n,)))
        for example, n in zip(build_dataset(96), lengths, strict=True)
    ]
    by_key = {e["key"]: len(e["input_ids"]) for e in data}

    def padded_tokens(keys: list[list[str]]) -> int:
        return sum(len(batch) * max(by_key[k] for k in batch) for batch in keys)

    def pad_collate(examples: list[dict]) -> dict:
        width = max(len(e["input_ids"]) for e in examples)
        pad = torch.nn.functional.pad
        return collate(
            [
                dict(e, input_ids=pad(e["input_ids"], (0, width - len(e["input_ids"]))))
                for e in examples
            ]
        )

    orders = {}
    for run, grouped, seed in (("a", True, 1), ("b", True, 1), ("c", True, 2), ("d", False, 1)):
        loss_fn = RecordingLoss()
        args = arguments(tmp_path / run, seed=seed, max_steps=48, group_by_length=grouped)
        train(build_model(source_dropout=0.0), data, pad_collate, args, loss_fn=loss_fn)
        orders[run] = loss_fn.keys
    assert orders["a"] == orders["b"] != orders["c"]
    first, second = orders["a"][:24], orders["a"][24:]
    assert first != second  # each epoch draws a new grouping ...
    assert sorted(chain(*first)) == sorted(chain(*second)) == sorted(by_key)  # ... of every example
    assert padded_tokens(orders["a"]) < 0.8 * padded_tokens(orders["d"])


def test_a_setting_a_checkpoint_lacks_is_named_absent(tmp_path):
    args = arguments(tmp_path, save_every_steps=2)
    train(build_model(), DATA, collate, args)
    (tmp_path / "run" / "result.json").unlink()
    checkpoint = tmp_path / "run" / "checkpoints" / "step-4"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    del state["settings"]["learning_rate"]
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    write_manifest(checkpoint)  # intact, from a run that did not record the setting
    with pytest.raises(FlareError, match=r"learning_rate: <absent> -> 0\.01"):
        train(build_model(), DATA, collate, args)


def test_records_of_an_older_flare_xlt_are_refused_in_one_line(tmp_path):
    # result.json and trainer_state.json kept a bare "fingerprint" before record schemas
    args = arguments(tmp_path, save_every_steps=2)
    train(build_model(), DATA, collate, args)
    run = tmp_path / "run"
    saved = json.loads((run / "result.json").read_text())
    old = {"result": saved["result"], "fingerprint": saved["settings"]}
    (run / "result.json").write_text(json.dumps(old))
    with pytest.raises(FlareError, match=rf"^{run} was written by an older flare-xlt") as caught:
        train(build_model(), DATA, collate, args)
    assert "\n" not in str(caught.value) and f"delete {run} to train this run again" in str(
        caught.value
    )
    (run / "result.json").unlink()
    checkpoint = run / "checkpoints" / "step-4"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    old = {"loop": state["loop"], "fingerprint": state["settings"], "num_processes": 1}
    (checkpoint / "trainer_state.json").write_text(json.dumps(old))
    write_manifest(checkpoint)
    with pytest.raises(FlareError, match=r"step-4 was written by an older flare-xlt.*delete"):
        train(build_model(), DATA, collate, args)
