"""Evaluation throughput (examples/s) of LoRA, FLARE, FLARE-MT and input-level fusion.

Each method classifies the same batch under ``torch.inference_mode`` in eval
mode, as :class:`~flare_xlt.recipes.scoring.ClassificationScorer` does when it
predicts (for a causal LM: three label-word logits at the last position). All
methods share the base model's weights and run in this one process,
interleaved (round-robin, several rounds) after warm-up.

Evaluation sees new examples, so nothing is cached: ``flare`` runs its English
source pass for every batch and ``flare_mt`` its latent encoder.

Usage::

    python benchmarks/inference.py --model tiny
    python benchmarks/inference.py --model gemma-3-270m --batch-size 8 --seq-len 48 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    EVAL_METHODS,
    METHOD_NOTES,
    MODELS,
    Setup,
    build_method,
    calls_per_step,
    check_target,
    interleaved_timings,
    load_model,
    machine_info,
    make_batches,
    markdown_table,
    median,
    paired_ratio,
    spread,
    to_device,
)

# method -> (bound, "min"): the target for the throughput ratio to lora.
TARGETS = {"flare": (0.48, "min")}
EVAL_NOTES = {
    "flare": "English source pass (uncached) + fused pass",
    "flare_mt": "latent encoder (uncached) + fused pass",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=48, help="target (and source) tokens")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (one batch per method)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu (measured here) or cuda")
    parser.add_argument(
        "--methods", default=",".join(EVAL_METHODS), help="comma-separated subset (keep lora)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch build sees no CUDA device")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(EVAL_METHODS))
    if unknown or "lora" not in args.methods:
        parser.error(f"--methods: choose from {', '.join(EVAL_METHODS)}, including lora")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))

    started = time.perf_counter()
    backbone = load_model(args.model)
    batches = make_batches(backbone, args.batch_size, args.seq_len)
    batches = to_device(backbone, batches, args.device)
    setups = [build_method(m, backbone, batches, train=False, cache=False) for m in args.methods]
    log(f"built {len(setups)} methods in {time.perf_counter() - started:.1f}s; timing ...")
    times, phases = interleaved_timings(setups, Setup.eval_step, args.warmup, args.steps)
    calls = {s.name: calls_per_step(s, Setup.eval_step) for s in setups}

    result = summarize(args, backbone.description, times, phases, calls)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2) if args.json else render(result))


def summarize(
    args: argparse.Namespace, description: str, times: dict, phases: dict, calls: dict
) -> dict:
    """Throughput from the median batch time, ratios to lora and the target."""
    lora_throughput = args.batch_size / median(times["lora"])
    methods = {}
    for name, values in times.items():
        q1, q3 = spread(values)
        throughput = args.batch_size / median(values)
        methods[name] = {
            "note": EVAL_NOTES.get(name, METHOD_NOTES[name]),
            "median_ms_per_batch": round(1000 * median(values), 3),
            "source_median_ms": round(1000 * median(phases[name].get("source", [0.0])), 3),
            "q1_ms": round(1000 * q1, 3),
            "q3_ms": round(1000 * q3, 3),
            "examples_per_s": round(throughput, 2),
            "throughput_ratio": round(throughput / lora_throughput, 3),
            "paired_throughput_ratio": round(1 / paired_ratio(values, times["lora"]), 3),
            "passes_per_batch": calls[name],
        }
    targets = []
    for name, (bound, kind) in TARGETS.items():
        if name in methods:
            value = methods[name]["throughput_ratio"]
            targets.append(
                {
                    "method": name,
                    "quantity": "eval throughput",
                    "ratio": value,
                    "bound": f"{'<=' if kind == 'max' else '>='} {bound}",
                    "status": check_target(value, bound, kind),
                }
            )
    return {
        "benchmark": "inference",
        "model": args.model,
        "model_description": description,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "warmup": args.warmup,
        "machine": machine_info(),
        "methods": methods,
        "targets": targets,
    }


def render(result: dict) -> str:
    """Markdown tables for the terminal and the docs."""
    m = result["machine"]
    lines = [
        f"inference: {result['model_description']}",
        f"batch {result['batch_size']} x seq len {result['seq_len']}; {result['steps']} timed "
        f"rounds after {result['warmup']} warm-up rounds, interleaved; torch.inference_mode",
        f"{m['cpu']}, {m['nproc']} cores, torch threads {m['torch_threads']}, load "
        f"{m['loadavg']}; torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}",
        "",
    ]
    header = ["method", "median ms/batch", "IQR ms", "source ms", "examples/s", "ratio to lora"]
    header += ["paired ratio", "passes/batch"]
    rows = [
        [
            name,
            f"{e['median_ms_per_batch']:.1f}",
            f"{e['q1_ms']:.1f}-{e['q3_ms']:.1f}",
            f"{e['source_median_ms']:.1f}",
            f"{e['examples_per_s']:.1f}",
            f"{e['throughput_ratio']:.2f}",
            f"{e['paired_throughput_ratio']:.2f}",
            f"{e['passes_per_batch']['body']}+{e['passes_per_batch']['encoder']}",
        ]
        for name, e in result["methods"].items()
    ]
    lines.append(markdown_table(header, rows))
    lines.append("")
    lines.append(
        "source ms = median time of the source side (source pass or latent encoder + "
        "projection); passes/batch = transformer-body forwards + latent-encoder forwards"
    )
    lines.append(
        "ratio to lora = examples/s / lora's; paired ratio = median over rounds of "
        "(lora's batch time / the method's, timed in the same round)"
    )
    if result["targets"]:
        lines.append("")
        lines.append(
            markdown_table(
                ["method", "quantity", "ratio to lora", "target", "status"],
                [
                    [t["method"], t["quantity"], f"{t['ratio']:.2f}", t["bound"], t["status"]]
                    for t in result["targets"]
                ],
            )
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
