"""Median training-step time and peak memory of LoRA, FLARE, FLARE-MT and input-level fusion.

One training step is ``zero_grad`` + classification loss forward + ``backward`` +
AdamW ``step``. All methods share the base model's weights, batch and sequence
length and run in this one process, interleaved (round-robin, several rounds)
after warm-up; each method's median step time is compared to ``lora``.

Peak memory is measured per method in a fresh subprocess holding only that
method's model, adapter and batch, over steady-state steps (after warm-up and,
for the cached methods, after the cache was filled):

* CPU, ``peak RSS``: peak anonymous resident memory (``VmHWM`` reset through
  ``/proc/self/clear_refs``, minus the file-backed pages) minus the anonymous
  RSS right after the model was built, with glibc told to return freed large
  blocks to the OS at once (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``).
* CPU, ``tensor peak`` (cross-check, allocator level): AdamW state + source cache
  + the peak of live CPU tensor bytes within one step, from ``torch.profiler``.
* CUDA (``--device cuda``): ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``, minus the memory allocated after setup.

Usage::

    python benchmarks/train_step.py --model tiny
    python benchmarks/train_step.py --model gemma-3-270m --batch-size 8 --seq-len 48 --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MALLOC_ENV,
    METHOD_NOTES,
    MODELS,
    TRAIN_METHODS,
    Setup,
    anon_rss_bytes,
    build_method,
    cache_bytes,
    calls_per_step,
    check_target,
    interleaved_timings,
    load_model,
    machine_info,
    make_batches,
    markdown_table,
    median,
    mib,
    optimizer_state_bytes,
    paired_ratio,
    peak_anon_rss_bytes,
    profiled_peak_bytes,
    reset_peak_rss,
    spread,
    to_device,
    warm_cache,
)

PHASES = ("source", "forward", "backward", "optimizer")
# method -> (quantity, bound, "max" | "min"): the targets, as ratios to lora.
TARGETS = {
    "flare": [("step time", 1.40, "max"), ("peak memory", 1.25, "max")],
    "flare_cached": [("step time", 1.10, "max")],
    "flare_mt": [("step time", 1.10, "max")],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="tiny")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=48, help="target (and source) tokens")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (one step per method)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", help="cpu (measured here) or cuda")
    parser.add_argument(
        "--methods", default=",".join(TRAIN_METHODS), help="comma-separated subset (keep lora)"
    )
    parser.add_argument(
        "--memory-steps",
        type=int,
        default=3,
        help="steady-state steps per method in its memory subprocess (0: skip memory)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)  # internal: one method's memory
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch build sees no CUDA device")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(TRAIN_METHODS))
    if unknown or "lora" not in args.methods:
        parser.error(f"--methods: choose from {', '.join(TRAIN_METHODS)}, including lora")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(measure_memory(args, args.memory_child)))
        return
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))

    started = time.perf_counter()
    backbone = load_model(args.model)
    batches = make_batches(backbone, args.batch_size, args.seq_len)
    batches = to_device(backbone, batches, args.device)
    setups = [build_method(m, backbone, batches, train=True) for m in args.methods]
    for setup in setups:
        warm_cache(setup)  # the first epoch of the cached methods
    log(f"built {len(setups)} methods in {time.perf_counter() - started:.1f}s; timing ...")
    times, phases = interleaved_timings(setups, Setup.train_step, args.warmup, args.steps)
    calls = {s.name: calls_per_step(s, Setup.train_step) for s in setups}
    cached = {s.name: cache_bytes(s) for s in setups}
    del setups
    memory = {}
    if args.memory_steps > 0:
        for method in args.methods:
            log(f"memory of {method} (fresh subprocess) ...")
            memory[method] = memory_subprocess(args, method)

    result = summarize(args, backbone.description, times, phases, calls, cached, memory)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))


# ---------------------------------------------------------------------- memory
def memory_subprocess(args: argparse.Namespace, method: str) -> dict:
    """Run this script for one method's memory in a fresh interpreter; its JSON result."""
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        method,
        "--model",
        args.model,
        "--batch-size",
        str(args.batch_size),
        "--seq-len",
        str(args.seq_len),
        "--warmup",
        str(args.warmup),
        "--memory-steps",
        str(args.memory_steps),
        "--device",
        args.device,
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, **MALLOC_ENV}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory subprocess for {method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_memory(args: argparse.Namespace, method: str) -> dict:
    """One method's memory: this process holds nothing but its model, adapter and batch."""
    if torch.device(args.device).type == "cuda":  # pragma: no cover - no GPU here
        return _measure_cuda(args, method)
    backbone = load_model(args.model)
    batches = make_batches(backbone, args.batch_size, args.seq_len)
    setup = build_method(method, backbone, batches, train=True, share_weights=False)
    del batches
    reset_peak_rss()
    baseline = anon_rss_bytes()
    warm_cache(setup)  # first epoch: not part of the steady state
    for _ in range(args.warmup):
        setup.train_step()
    reset_peak_rss()
    for _ in range(args.memory_steps):
        setup.train_step()
    peak = peak_anon_rss_bytes() - baseline
    step_peak = profiled_peak_bytes(setup.train_step)
    persistent = optimizer_state_bytes(setup) + cache_bytes(setup)
    return {
        "method": "rss",
        "baseline_rss_bytes": baseline,
        "peak_rss_over_model_bytes": peak,
        "tensor_peak_bytes": persistent + step_peak,
        "step_tensor_peak_bytes": step_peak,
        "optimizer_state_bytes": optimizer_state_bytes(setup),
        "cache_bytes": cache_bytes(setup),
    }


def _measure_cuda(args: argparse.Namespace, method: str) -> dict:  # pragma: no cover
    backbone = load_model(args.model)
    batches = make_batches(backbone, args.batch_size, args.seq_len)
    batches = to_device(backbone, batches, args.device)
    setup = build_method(method, backbone, batches, train=True, share_weights=False)
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    warm_cache(setup)
    for _ in range(args.warmup):
        setup.train_step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(args.memory_steps):
        setup.train_step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - baseline
    return {
        "method": "cuda",
        "baseline_rss_bytes": baseline,
        "peak_rss_over_model_bytes": peak,
        "tensor_peak_bytes": peak,
        "step_tensor_peak_bytes": peak,
        "optimizer_state_bytes": optimizer_state_bytes(setup),
        "cache_bytes": cache_bytes(setup),
    }


# ---------------------------------------------------------------------- report
def summarize(args, description, times, phases, calls, cached, memory) -> dict:
    """Medians, quartiles, ratios to lora and the targets, as one JSON-able dict."""
    lora_time = median(times["lora"])
    lora_mem = memory.get("lora", {})
    methods = {}
    for name, values in times.items():
        q1, q3 = spread(values)
        entry = {
            "note": METHOD_NOTES[name],
            "median_ms": round(1000 * median(values), 3),
            "q1_ms": round(1000 * q1, 3),
            "q3_ms": round(1000 * q3, 3),
            "time_ratio": round(median(values) / lora_time, 3),
            "paired_time_ratio": round(paired_ratio(values, times["lora"]), 3),
            "phase_median_ms": {
                phase: round(1000 * median(seconds), 3) for phase, seconds in phases[name].items()
            },
            "passes_per_step": calls[name],
            "cache_bytes": cached[name],
        }
        if name in memory:
            mem = memory[name]
            entry["peak_memory_bytes"] = mem["peak_rss_over_model_bytes"]
            entry["memory_ratio"] = round(
                mem["peak_rss_over_model_bytes"] / lora_mem["peak_rss_over_model_bytes"], 3
            )
            entry["tensor_peak_bytes"] = mem["tensor_peak_bytes"]
            entry["tensor_ratio"] = round(
                mem["tensor_peak_bytes"] / lora_mem["tensor_peak_bytes"], 3
            )
            entry["step_tensor_peak_bytes"] = mem["step_tensor_peak_bytes"]
            entry["optimizer_state_bytes"] = mem["optimizer_state_bytes"]
            entry["baseline_rss_bytes"] = mem["baseline_rss_bytes"]
        methods[name] = entry
    targets = []
    for name, checks in TARGETS.items():
        for quantity, bound, kind in checks:
            key = "time_ratio" if quantity == "step time" else "memory_ratio"
            if name not in methods or key not in methods[name]:
                continue
            value = methods[name][key]
            targets.append(
                {
                    "method": name,
                    "quantity": quantity,
                    "ratio": value,
                    "bound": f"{'<=' if kind == 'max' else '>='} {bound}",
                    "status": check_target(value, bound, kind),
                }
            )
    memory_method = (
        "per method in a fresh subprocess: torch.cuda.max_memory_allocated during steady-state "
        "steps (after reset_peak_memory_stats) minus memory_allocated after model+adapter+batch"
        if any(m.get("method") == "cuda" for m in memory.values())
        else (
            "per method in a fresh subprocess. peak RSS = peak anonymous RSS during "
            f"{args.memory_steps} steady-state steps (VmHWM reset via /proc/self/clear_refs after "
            "warm-up, minus RssFile/RssShmem) minus RssAnon after model+adapter+batch were "
            "built; glibc "
            f"{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}. tensor peak = AdamW state "
            "+ cache + torch.profiler peak of live CPU tensor bytes within one steady-state step"
        )
    )
    return {
        "benchmark": "train_step",
        "model": args.model,
        "model_description": description,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "warmup": args.warmup,
        "memory_steps": args.memory_steps,
        "memory_method": memory_method if memory else "skipped",
        "machine": machine_info(),
        "methods": methods,
        "targets": targets,
    }


def render(result: dict) -> str:
    """Markdown tables for the terminal and the docs."""
    m = result["machine"]
    lines = [
        f"train_step: {result['model_description']}",
        f"batch {result['batch_size']} x seq len {result['seq_len']}; {result['steps']} timed "
        f"rounds after {result['warmup']} warm-up rounds, interleaved",
        f"{m['cpu']}, {m['nproc']} cores, torch threads {m['torch_threads']}, load "
        f"{m['loadavg']}; torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}",
        "",
    ]
    has_memory = any("peak_memory_bytes" in e for e in result["methods"].values())
    header = ["method", "median ms/step", "IQR ms", "ratio to lora", "paired ratio"]
    header += ["src/fwd/bwd/opt ms"]
    header += ["passes/step"]
    if has_memory:
        header += ["peak RSS MiB", "ratio", "tensor peak MiB", "ratio", "cache MiB"]
    rows = []
    for name, e in result["methods"].items():
        passes = e["passes_per_step"]
        row = [
            name,
            f"{e['median_ms']:.1f}",
            f"{e['q1_ms']:.1f}-{e['q3_ms']:.1f}",
            f"{e['time_ratio']:.2f}",
            f"{e['paired_time_ratio']:.2f}",
            " / ".join(f"{e['phase_median_ms'].get(p, 0):.0f}" for p in PHASES),
            f"{passes['body']}+{passes['encoder']}",
        ]
        if has_memory:
            row += [
                mib(e["peak_memory_bytes"]),
                f"{e['memory_ratio']:.2f}",
                mib(e["tensor_peak_bytes"]),
                f"{e['tensor_ratio']:.2f}",
                f"{e['cache_bytes'] / 2**20:.2f}",
            ]
        rows.append(row)
    lines.append(markdown_table(header, rows))
    lines.append("")
    lines.append(
        "src/fwd/bwd/opt = median ms of the source side (source pass, cache load or latent "
        "projection), the rest of the forward, backward, and zero_grad+AdamW step"
    )
    lines.append(
        "ratio to lora = median / lora's median; paired ratio = median over rounds of "
        "(step / lora's step in the same round)"
    )
    lines.append("passes/step = transformer-body forwards + latent-encoder forwards per step")
    if has_memory:
        lines.append(f"memory: {result['memory_method']}")
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
