"""Training-step time and memory of 4-bit (QLoRA) LoRA and FLARE against fp32 LoRA.

The fp32 methods wrap weight-sharing copies of the fp32 base; the 4-bit methods wrap
weight-sharing copies of the same checkpoint loaded in 4 bits (bitsandbytes NF4, fp32
compute). Steps are timed interleaved in one process (see ``train_step.py``); memory is
the size of each base model's weights (``memory of weights``) and the peak anonymous
RSS of one step of each method in a fresh subprocess, minus its RSS after setup.

Usage::

    python benchmarks/quantized_step.py --model gemma-3-270m --batch-size 8 --seq-len 48
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MALLOC_ENV,
    anon_rss_bytes,
    build_method,
    interleaved_timings,
    load_model,
    machine_info,
    make_batches,
    markdown_table,
    median,
    mib,
    paired_ratio,
    peak_anon_rss_bytes,
    reset_peak_rss,
)

METHODS = ("lora", "lora_4bit", "flare_4bit")


def load_4bit(backbone):
    """``backbone`` with its model replaced by the same checkpoint loaded in 4 bits."""
    from flare_xlt.models import load_backbone
    from flare_xlt.models.quantization import QuantizationArgs

    if backbone.name != "gemma-3-270m":
        raise SystemExit("the 4-bit benchmark loads a saved checkpoint: use --model gemma-3-270m")
    quantized, _ = load_backbone(
        "gemma-3-270m", "causal_lm", quantization=QuantizationArgs(load_in_4bit=True)
    )
    return dataclasses.replace(backbone, model=quantized.eval())


def setups(name_list, batch_size: int, seq_len: int):
    full = load_model("gemma-3-270m")
    quantized = load_4bit(full)
    batches = make_batches(full, batch_size, seq_len)
    built = []
    for name in name_list:
        kind = name.removesuffix("_4bit")
        backbone = quantized if name.endswith("_4bit") else full
        setup = build_method(kind, backbone, batches, train=True)
        setup.name = name
        built.append(setup)
    return full, quantized, built


def weight_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def peak_of_one(name: str, batch_size: int, seq_len: int, steps: int) -> int:
    """Peak anonymous RSS of ``steps`` training steps of ``name``, in a fresh process."""
    here = str(Path(__file__).parent)
    code = (
        f"import sys, json; sys.path.insert(0, {here!r}); import quantized_step as q; "
        f"print(json.dumps(q.measure_peak({name!r}, {batch_size}, {seq_len}, {steps})))"
    )
    env = {**os.environ, **MALLOC_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_peak(name: str, batch_size: int, seq_len: int, steps: int) -> int:
    torch.set_num_threads(1)
    *_, built = setups([name], batch_size, seq_len)
    setup = built[0]
    setup.train_step()  # warm-up: optimizer state exists
    before = anon_rss_bytes()
    if not reset_peak_rss():
        return -1
    for _ in range(steps):
        setup.train_step()
    return peak_anon_rss_bytes() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=48)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    full, quantized, built = setups(METHODS, args.batch_size, args.seq_len)
    times, _ = interleaved_timings(built, lambda s: s.train_step(), args.warmup, args.steps)
    peaks = {name: peak_of_one(name, args.batch_size, args.seq_len, 3) for name in METHODS}
    weights = {"lora": weight_bytes(full.model), "4bit": weight_bytes(quantized.model)}
    reference = times["lora"]
    rows = []
    for name in METHODS:
        base = "4bit" if name.endswith("_4bit") else "lora"
        rows.append(
            [
                name,
                f"{median(times[name]) * 1000:.0f} ms",
                f"{median(times[name]) / median(reference):.2f}",
                f"{paired_ratio(times[name], reference):.2f}",
                mib(weights[base]),
                mib(peaks[name]) if peaks[name] >= 0 else "n/a",
                f"{peaks[name] / peaks['lora']:.2f}" if min(peaks.values()) > 0 else "n/a",
            ]
        )
    header = ["method", "median step", "ratio to lora", "paired ratio", "base weights",
              "peak RSS of a step", "RSS ratio"]  # fmt: skip
    print(markdown_table(header, rows))
    print(f"batch {args.batch_size} x {args.seq_len} tokens, {args.steps} timed rounds; "
          f"{json.dumps(machine_info())}")  # fmt: skip
    if args.json:
        record = {"args": vars(args), "times": times, "peaks": peaks, "weights": weights}
        out = Path(__file__).parent / "results" / "quantized_step-gemma-3-270m.json"
        out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
