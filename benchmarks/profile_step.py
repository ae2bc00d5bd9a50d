"""Where a method's extra time goes: per-op profiles against lora, and the source side's parts.

Two reports, both interleaved over methods like the benchmarks:

* ``ops`` (default): every step of every method is profiled with ``torch.profiler``;
  the table lists, per method, the ATen ops whose self CPU time per step grew
  most against the first method (``lora``), with the change in call count.
* ``parts``: median times of the pieces of the source side in isolation: the
  FLARE source pass, a plain no-grad forward of the same transformer body, the
  source-cache load of one batch, the eval/train mode switch the source pass
  does, the forward with and without the LM head, and the LM head's forward +
  backward over the full vocabulary against the three label-word rows only.

Usage::

    python benchmarks/profile_step.py --model tiny --methods lora,flare_cached,flare_mt
    python benchmarks/profile_step.py --model gemma-3-270m --report parts --steps 5
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    MODELS,
    TRAIN_METHODS,
    Setup,
    build_method,
    load_model,
    make_batches,
    markdown_table,
    median,
    warm_cache,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="tiny")
    parser.add_argument("--report", choices=("ops", "parts"), default="ops")
    parser.add_argument("--mode", choices=("train", "eval"), default="train")
    parser.add_argument("--methods", default="lora,flare,flare_cached,flare_mt")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=48)
    parser.add_argument("--steps", type=int, default=10, help="profiled rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--top", type=int, default=15, help="ops listed per method")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not set(args.methods) <= set(TRAIN_METHODS):
        parser.error(f"--methods: choose from {', '.join(TRAIN_METHODS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    backbone = load_model(args.model)
    batches = make_batches(backbone, args.batch_size, args.seq_len)
    if args.report == "parts":
        print(parts_report(backbone, batches, args.steps))
    else:
        print(ops_report(args, backbone, batches))


def ops_report(args: argparse.Namespace, backbone, batches) -> str:
    """Per-op self CPU time per step, interleaved over methods, as differences to the first."""
    from torch.profiler import ProfilerActivity, profile

    train = args.mode == "train"
    step = Setup.train_step if train else Setup.eval_step
    setups = [build_method(m, backbone, batches, train=train, cache=None) for m in args.methods]
    for setup in setups:
        warm_cache(setup)
        step(setup)  # warm-up
    totals = {s.name: collections.defaultdict(lambda: [0.0, 0.0]) for s in setups}
    for round_index in range(args.steps):
        shift = round_index % len(setups)
        for setup in setups[shift:] + setups[:shift]:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step(setup)
            for event in prof.key_averages():
                entry = totals[setup.name][event.key]
                entry[0] += event.self_cpu_time_total / 1000 / args.steps  # ms per step
                entry[1] += event.count / args.steps
    lines = []
    summary = []
    for setup in setups:
        ops = totals[setup.name]
        aten = sum(c for k, (_, c) in ops.items() if k.startswith("aten::"))
        summary.append([setup.name, f"{sum(t for t, _ in ops.values()):.1f}", f"{aten:.0f}"])
    lines.append(markdown_table(["method", "self CPU ms/step", "aten ops/step"], summary))
    base_name = setups[0].name
    base = totals[base_name]
    for setup in setups[1:]:
        ops = totals[setup.name]
        rows = sorted(
            (
                (t - base.get(k, (0.0, 0.0))[0], c - base.get(k, (0.0, 0.0))[1], k)
                for k, (t, c) in ops.items()
            ),
            reverse=True,
        )[: args.top]
        lines.append("")
        lines.append(
            f"{setup.name} vs {base_name} ({args.mode}): ops with the largest extra self time"
        )
        lines.append(
            markdown_table(
                ["extra ms/step", "extra calls/step", "op"],
                [[f"{d:.2f}", f"{c:+.0f}", k] for d, c, k in rows],
            )
        )
    return "\n".join(lines)


def parts_report(backbone, batches, steps: int) -> str:
    """Median ms of the source side's pieces, under ``torch.inference_mode``."""
    from flare_xlt.alignment import pack_real_tokens_first

    flare = build_method("flare", backbone, batches, train=False, cache=False)
    cached = build_method("flare_cached", backbone, batches, train=False)
    lora = build_method("lora", backbone, batches, train=False)
    warm_cache(cached)
    model = flare.model
    ids, mask = pack_real_tokens_first(
        batches["flare"]["source_input_ids"], batches["flare"]["source_attention_mask"]
    )
    body = model.hf_model.base_model
    keys = cached.batch["cache_keys"]
    lora_inputs = {k: lora.batch[k] for k in ("input_ids", "attention_mask")}
    pieces = {
        "lora forward (body + LM head at 1 position)": lambda: lora.model(
            **lora_inputs, logits_to_keep=1, use_cache=False
        ),
        "lora body only (no LM head)": lambda: lora.model.hf_model.base_model(
            **lora_inputs, use_cache=False
        ),
        "FLARE source pass (ModelSource.run)": lambda: model.source.run(ids, mask),
        "plain no-grad body forward, same input": lambda: body(
            input_ids=ids, attention_mask=mask, use_cache=False
        ),
        "SourceCache.load of the batch": lambda: cached.model.source_cache.load(
            keys, torch.float32, torch.device("cpu")
        ),
        "mode switch in the source pass (eval + train)": lambda: (model.eval(), model.train(False)),
    }
    # With autograd: the LM head at the answer position, forward + backward to its input,
    # as in a training step (full vocabulary) and restricted to the three label words.
    head = lora.model.hf_model.get_output_embeddings()
    hidden = torch.randn(len(keys), head.in_features, requires_grad=True)
    labels = torch.zeros(len(keys), dtype=torch.long)
    words = backbone.verbalizer_ids

    def head_full():
        logits = head(hidden)[:, words]
        torch.nn.functional.cross_entropy(logits, labels).backward()

    def head_words():
        logits = hidden @ head.weight[words].T
        torch.nn.functional.cross_entropy(logits, labels).backward()

    grad_pieces = {
        "LM head fwd+bwd, full vocabulary (as logits_to_keep=1)": head_full,
        "LM head fwd+bwd, 3 label-word rows only": head_words,
    }
    times = {name: [] for name in (*pieces, *grad_pieces)}
    for round_index in range(steps + 1):
        for group, grad in ((pieces, False), (grad_pieces, True)):
            with torch.inference_mode(not grad):
                for name, fn in group.items():
                    start = time.perf_counter()
                    fn()
                    if round_index > 0:
                        times[name].append(time.perf_counter() - start)
    rows = [[name, f"{1000 * median(values):.2f}"] for name, values in times.items()]
    return markdown_table(["piece (batch as in the benchmarks)", "median ms"], rows)


if __name__ == "__main__":
    main()
