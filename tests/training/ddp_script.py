"""Train a tiny FLARE model with ``flare_xlt.training.loop.train``; the training tests run it.

    torchrun --nproc_per_node 2 tests/training/ddp_script.py OUT --processes 2
    python tests/training/ddp_script.py OUT --kill-at-batch 9   # SIGKILLs itself in batch 9
    python tests/training/ddp_script.py OUT --group-by-length   # length-grouped batches

The trainer writes into ``OUT/run``. Each rank also writes its trainable weights after
training to ``OUT/rank<i>.safetensors`` and the example ids of its batches to
``OUT/rank<i>-keys.json``: the test's own output, outside the trainer's dir.
The tests import the model, data and settings from here so every run trains the same thing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import torch
import transformers as tf
from accelerate import PartialState
from safetensors.torch import save_file

from flare_xlt import FlareConfig, FlareModel
from flare_xlt.training.args import TrainingArguments
from flare_xlt.training.loop import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, when run as a script
from tiny_models import tiny_config

VOCAB = 64
TARGET_LENGTH, SOURCE_LENGTH = 8, 6
# Dropout and source dropout make training consume RNG, so resume must restore it.
RESUME_SETTINGS = {
    "max_steps": 8,
    "batch_size": 4,
    "gradient_accumulation_steps": 2,
    "save_every_steps": 2,
    "eval_every_steps": 3,
    "log_every_steps": 1,
    "learning_rate": 1e-2,
}
DDP_SETTINGS = {"max_steps": 6, "batch_size": 3, "save_every_steps": 2, "log_every_steps": 1}


def build_model(dropout: float = 0.1, source_dropout: float = 0.3, seed: int = 0) -> FlareModel:
    """A FLARE adapter on the tiny random Llama of tests/tiny_models.py, same weights per seed."""
    torch.manual_seed(seed)
    config = tiny_config("llama", vocab_size=VOCAB)
    base = tf.AutoModelForCausalLM.from_config(config)
    flare = FlareConfig(r=4, dropout=dropout, source_dropout=source_dropout)
    return FlareModel.from_base(base, flare)


def build_dataset(size: int = 20, seed: int = 1) -> list[dict]:
    """Random target/source token pairs with a string id per example."""
    generator = torch.Generator().manual_seed(seed)
    return [
        {
            "key": f"ex{i}",
            "input_ids": torch.randint(3, VOCAB, (TARGET_LENGTH,), generator=generator),
            "source_input_ids": torch.randint(3, VOCAB, (SOURCE_LENGTH,), generator=generator),
        }
        for i in range(size)
    ]


def collate(examples: list[dict]) -> dict:
    ids = torch.stack([e["input_ids"] for e in examples])
    source = torch.stack([e["source_input_ids"] for e in examples])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": ids.clone(),
        "source_input_ids": source,
        "source_attention_mask": torch.ones_like(source),
        "cache_keys": [e["key"] for e in examples],
    }


def eval_fn(model: torch.nn.Module) -> float:
    """Negative loss on a fixed held-out batch (higher is better)."""
    return -float(model(**collate(build_dataset(4, seed=99))).loss)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


class RecordingLoss:
    """The default loss; records each batch's ``cache_keys`` and can SIGKILL this process.

    ``kill_at_batch``: die (no cleanup, like an OOM kill) in that micro-batch's forward.
    """

    def __init__(self, kill_at_batch: int | None = None):
        self.kill_at_batch = kill_at_batch
        self.keys: list[list[str]] = []

    def __call__(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        self.keys.append(list(batch["cache_keys"]))
        if len(self.keys) == self.kill_at_batch:
            os.kill(os.getpid(), signal.SIGKILL)
        return model(**batch).loss


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--kill-at-batch", type=int)
    parser.add_argument("--group-by-length", action="store_true")
    options = parser.parse_args(argv)
    distributed = options.processes > 1
    model = build_model(source_dropout=0.0 if distributed else 0.3)  # DDP: every param used
    settings = DDP_SETTINGS if distributed else RESUME_SETTINGS
    args = TrainingArguments(
        options.out / "run", progress=False, group_by_length=options.group_by_length, **settings
    )
    loss_fn = RecordingLoss(options.kill_at_batch)
    train(
        model,
        build_dataset(24 if distributed else 20),
        collate,
        args,
        eval_fn=None if distributed else eval_fn,
        loss_fn=loss_fn,
    )
    state = PartialState()  # what the trainer's Accelerator formed (it is shared)
    assert state.num_processes == options.processes, state
    rank = options.out / f"rank{state.process_index}"
    save_file(trainable_state(model), f"{rank}.safetensors")
    Path(f"{rank}-keys.json").write_text(json.dumps(loss_fn.keys))


if __name__ == "__main__":
    main(sys.argv[1:])
