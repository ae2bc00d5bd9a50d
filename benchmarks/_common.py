"""Shared setup of the benchmarks: backbones, the compared methods, batches, timing, memory.

Every method wraps its own copy of the *same* base model (the copies share the
frozen weight tensors, so building five methods costs one model's memory) and
sees the same synthetic batch:

* ``lora`` -- translate-train LoRA (``source=None``), target text ``[B, T]``.
* ``flare`` -- FLARE: frozen English source pass ``[B, T]`` plus the fused pass.
* ``flare_cached`` -- FLARE with a :class:`~flare_xlt.SourceCache` that already holds
  the batch's source states (what every epoch after the first sees).
* ``flare_mt`` -- FLARE-MT: a frozen latent encoder on the target text, then a
  trainable projection; the encoder states come from the cache (training) or are
  computed fresh (evaluation).
* ``input_fusion`` -- LoRA on English and target text concatenated ``[B, 2T]``.

All tokens are real (no padding), so every method sees exactly ``T`` (or ``2T``)
tokens per example. Loss and logits are the recipes' classification scorer: for
a causal LM, three label-word logits at the last position (``logits_to_keep=1``).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import gc
import itertools
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from flare_xlt import FlareConfig, FlareModel, LatentEncoder, SourceCache
from flare_xlt.recipes.scoring import ClassificationScorer

MODELS = ("tiny", "gemma-3-270m")
TRAIN_METHODS = ("lora", "flare", "flare_cached", "flare_mt", "input_fusion")
EVAL_METHODS = ("lora", "flare", "flare_mt", "input_fusion")
METHOD_NOTES = {
    "lora": "translate-train LoRA, target text only",
    "flare": "English source pass (no grad) + fused pass",
    "flare_cached": "FLARE, source states from a warm SourceCache (epochs >= 2)",
    "flare_mt": "FLARE-MT, latent encoder states",
    "input_fusion": "LoRA on English + target concatenated (2x length)",
}
# Lets glibc hand every large tensor back to the OS when it is freed, so that RSS
# follows the live tensors instead of whatever the allocator keeps for later.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


# ---------------------------------------------------------------------- backbones
@dataclass
class Backbone:
    """A frozen base model and what the methods need besides it."""

    name: str
    model: nn.Module
    vocab_size: int
    hidden_size: int
    verbalizer_ids: list[int]
    encoder: nn.Module  # FLARE-MT's latent encoder
    encoder_vocab_size: int
    encoder_hidden_size: int
    description: str


def load_model(name: str) -> Backbone:
    """``tiny`` (random 4-layer Llama + 2-layer BERT) or ``gemma-3-270m`` (+ multilingual-e5-small).

    The default float32 precision is kept: these are CPU benchmarks.
    """
    torch.manual_seed(0)
    if name == "tiny":
        return _tiny_backbone()
    if name == "gemma-3-270m":
        from flare_xlt.models import load_backbone

        model, tokenizer = load_backbone("gemma-3-270m", task="causal_lm")
        encoder, _ = load_backbone("multilingual-e5-small", task="encoder")
        words = ["negative", "neutral", "positive"]
        verbalizer = [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
        text = model.config.get_text_config()
        return Backbone(
            name=name,
            model=model,
            vocab_size=text.vocab_size,
            hidden_size=text.hidden_size,
            verbalizer_ids=verbalizer,
            encoder=encoder,
            encoder_vocab_size=encoder.config.vocab_size,
            encoder_hidden_size=encoder.config.hidden_size,
            description=(
                f"gemma-3-270m ({text.num_hidden_layers} layers, hidden {text.hidden_size}, "
                f"vocab {text.vocab_size}, fp32) + multilingual-e5-small latent encoder "
                f"({encoder.config.num_hidden_layers} layers, hidden {encoder.config.hidden_size})"
            ),
        )
    raise SystemExit(f"unknown --model {name!r}; choose from {', '.join(MODELS)}")


def _tiny_backbone() -> Backbone:
    import transformers as tf

    config = tf.LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=0,
    )
    encoder_config = tf.BertConfig(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=1024,
        pad_token_id=0,
    )
    model = tf.LlamaForCausalLM(config).eval()
    encoder = tf.BertModel(encoder_config, add_pooling_layer=False).eval()
    return Backbone(
        name="tiny",
        model=model,
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        verbalizer_ids=[10, 11, 12],
        encoder=encoder,
        encoder_vocab_size=encoder_config.vocab_size,
        encoder_hidden_size=encoder_config.hidden_size,
        description=(
            "tiny random Llama (4 layers, hidden 64, vocab 512, fp32) + tiny random BERT "
            "latent encoder (2 layers, hidden 32)"
        ),
    )


def to_device(backbone: Backbone, batches: dict, device: str) -> dict:
    """Move the backbone (in place) and the batches to ``device``; returns the moved batches."""
    backbone.model.to(device)
    backbone.encoder.to(device)
    return {name: {k: v.to(device) for k, v in batch.items()} for name, batch in batches.items()}


def synchronizer(device: str) -> Callable[[], None]:
    """``torch.cuda.synchronize`` for a CUDA device (kernels run asynchronously), else a no-op."""
    if torch.device(device).type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def shared_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are the original tensors."""
    memo = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    return copy.deepcopy(model, memo)


# ---------------------------------------------------------------------- methods
@dataclass
class Setup:
    """One method, ready to run: its model, batch, optimizer and scorer."""

    name: str
    model: FlareModel
    batch: dict
    scorer: ClassificationScorer
    optimizer: torch.optim.Optimizer | None = None
    calls: dict[str, int] = field(default_factory=lambda: {"body": 0, "encoder": 0})
    phases: dict[str, float] = field(default_factory=dict)  # seconds, of the last step
    sync: Callable[[], None] = lambda: None  # torch.cuda.synchronize on CUDA

    def train_step(self) -> float:
        """zero_grad, loss forward, backward, AdamW step; returns the loss.

        Records the seconds of each phase in :attr:`phases`: ``source`` (the
        model's source side: source pass, cache load or latent projection),
        ``forward`` (the rest of the loss forward), ``backward`` and ``optimizer``
        (``zero_grad`` + ``step``).
        """
        self.phases["source"] = 0.0
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        loss = self.scorer.loss(self.model, self.batch)
        self.sync()
        t2 = time.perf_counter()
        loss.backward()
        self.sync()
        t3 = time.perf_counter()
        self.optimizer.step()
        self.sync()
        t4 = time.perf_counter()
        self.phases["forward"] = t2 - t1 - self.phases["source"]
        self.phases["backward"] = t3 - t2
        self.phases["optimizer"] = (t1 - t0) + (t4 - t3)
        return float(loss.detach())

    def eval_step(self) -> Tensor:
        """Predicted classes of the batch under ``torch.inference_mode``."""
        with torch.inference_mode():
            return self.scorer.logits(self.model, self.batch).argmax(-1)


def make_batches(backbone: Backbone, batch_size: int, seq_len: int, seed: int = 0) -> dict:
    """Random token ids (all real tokens) for every input the methods use."""
    gen = torch.Generator().manual_seed(seed)

    def ids(vocab: int, length: int) -> Tensor:
        return torch.randint(3, vocab, (batch_size, length), generator=gen)

    target = ids(backbone.vocab_size, seq_len)
    source = ids(backbone.vocab_size, seq_len)
    latent = ids(backbone.encoder_vocab_size, seq_len)
    labels = torch.randint(0, 3, (batch_size,), generator=gen)
    ones = torch.ones(batch_size, seq_len, dtype=torch.long)
    concat = torch.cat([source, target], dim=1)
    return {
        "lora": {"input_ids": target, "attention_mask": ones, "labels": labels},
        "flare": {
            "input_ids": target,
            "attention_mask": ones,
            "source_input_ids": source,
            "source_attention_mask": ones,
            "labels": labels,
        },
        "flare_mt": {
            "input_ids": target,
            "attention_mask": ones,
            "latent_input_ids": latent,
            "latent_attention_mask": ones,
            "labels": labels,
        },
        "input_fusion": {
            "input_ids": concat,
            "attention_mask": torch.ones_like(concat),
            "labels": labels,
        },
    }


def build_method(
    name: str,
    backbone: Backbone,
    batches: dict,
    train: bool,
    share_weights: bool = True,
    cache: bool | None = None,
) -> Setup:
    """Wrap (a weight-sharing copy of) the base model for method ``name``.

    Args:
        cache: attach a :class:`SourceCache` (default: ``flare_cached`` always,
            ``flare_mt`` only when training).
    """
    base = shared_copy(backbone.model) if share_weights else backbone.model
    kind = "flare" if name == "flare_cached" else name
    source = {"flare": "model", "flare_mt": "latent"}.get(kind)
    latent = None
    if source == "latent":
        encoder = shared_copy(backbone.encoder) if share_weights else backbone.encoder
        latent = LatentEncoder(encoder, backbone.hidden_size)
    torch.manual_seed(1)  # the same adapter initialisation for every method
    model = FlareModel.from_base(base, FlareConfig(source=source, r=8, alpha=16), latent)
    if cache is None:
        cache = name == "flare_cached" or (name == "flare_mt" and train)
    if cache:
        model.source_cache = SourceCache()
    batch = dict(batches[kind])
    if source is not None:
        batch["cache_keys"] = [f"example-{i}" for i in range(batch["input_ids"].shape[0])]
    model.train(train)
    scorer = ClassificationScorer(len(backbone.verbalizer_ids), backbone.verbalizer_ids)
    setup = Setup(name, model, batch, scorer, sync=synchronizer(str(model.device)))
    if train:
        params = [p for p in model.parameters() if p.requires_grad]
        setup.optimizer = torch.optim.AdamW(params, lr=1e-4)
    _time_source_side(model, setup.phases)
    # Forward calls of the transformer body (2 per step with a source pass, else 1) and of
    # the latent encoder (0 per step once its states are cached): evidence of what runs.
    _count_calls(model.hf_model.base_model, setup.calls, "body")
    if latent is not None:
        _count_calls(latent.encoder, setup.calls, "encoder")
    return setup


def _time_source_side(model: FlareModel, phases: dict[str, float]) -> None:
    """Time ``model.source.batch`` (source pass / cache load / projection) into ``phases``."""
    if model.source is None:  # plain LoRA: no source side
        return
    inner = model.source.batch

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            phases["source"] = phases.get("source", 0.0) + time.perf_counter() - start

    model.source.batch = timed  # an instance attribute: the class is untouched


def _count_calls(module: nn.Module, counter: dict[str, int], key: str) -> None:
    def hook(*_):
        counter[key] += 1

    module.register_forward_hook(hook)


def calls_per_step(setup: Setup, step: Callable[[Setup], object]) -> dict[str, int]:
    """Forward calls of the body and latent encoder during one ``step`` of ``setup``."""
    before = dict(setup.calls)
    step(setup)
    return {k: setup.calls[k] - before[k] for k in before}


def warm_cache(setup: Setup) -> None:
    """Fill the source cache, as the first epoch does (one step that stores the batch)."""
    if setup.model.source_cache is None:
        return
    if setup.optimizer is not None:
        setup.train_step()
    else:
        setup.eval_step()
    assert len(setup.model.source_cache) == len(setup.batch["cache_keys"])


# ---------------------------------------------------------------------- timing
def interleaved_timings(
    setups: Sequence[Setup], step: Callable[[Setup], object], warmup: int, steps: int
) -> tuple[dict[str, list[float]], dict[str, dict[str, list[float]]]]:
    """Seconds per call of ``step`` for each setup, round-robin over setups.

    Round ``k`` starts with setup ``k mod n`` so that no method is always first
    after, say, a garbage collection. ``warmup`` rounds are run and discarded.

    Returns:
        method -> step seconds, and method -> phase -> seconds (phases recorded by
        :meth:`Setup.train_step`; empty for other steps).
    """
    times: dict[str, list[float]] = {s.name: [] for s in setups}
    phases: dict[str, dict[str, list[float]]] = {s.name: {} for s in setups}
    n = len(setups)
    for round_index in range(warmup + steps):
        gc.collect()
        order = [setups[(round_index + i) % n] for i in range(n)]
        for setup in order:
            setup.phases.clear()
            setup.sync()
            start = time.perf_counter()
            step(setup)
            setup.sync()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                times[setup.name].append(elapsed)
                for phase, seconds in setup.phases.items():
                    phases[setup.name].setdefault(phase, []).append(seconds)
    return times, phases


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(values: Sequence[float], reference: Sequence[float]) -> float:
    """Median over rounds of ``values[i] / reference[i]``: both were timed in the same round,
    seconds apart, so a slow drift of the machine's load cancels out."""
    return statistics.median(v / r for v, r in zip(values, reference, strict=True))


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(first, third) quartile, for the noise column."""
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


# ---------------------------------------------------------------------- memory
def anon_rss_bytes() -> int:
    """Current anonymous resident memory of this process (``RssAnon``: heap, mmapped tensors)."""
    return _status_kb("RssAnon") * 1024


def peak_anon_rss_bytes() -> int:
    """Peak anonymous RSS since the last :func:`reset_peak_rss`.

    The kernel tracks the peak of the whole RSS (``VmHWM``), which also counts
    file-backed pages such as the code of libtorch that the first backward pass
    touches; those stay resident, so subtracting today's ``RssFile`` and
    ``RssShmem`` leaves the peak of anonymous memory.
    """
    return (_status_kb("VmHWM") - _status_kb("RssFile") - _status_kb("RssShmem")) * 1024


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where that is not possible."""
    gc.collect()
    _malloc_trim()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def profiled_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of (allocated - freed) CPU tensor bytes while ``fn`` runs, from torch.profiler.

    The profiler records every allocation and free of the CPU allocator; their
    running sum, in time order, is the memory held by tensors created during
    ``fn`` (tensors freed during ``fn`` that existed before count negative).
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [
        (e.start_ns(), e.nbytes())  # nbytes < 0 for a free
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
    ]
    running = peak = 0
    for _, nbytes in sorted(events):
        running += nbytes
        peak = max(peak, running)
    return peak


def optimizer_state_bytes(setup: Setup) -> int:
    """Bytes of the optimizer's state tensors (AdamW: two moments per trainable parameter)."""
    if setup.optimizer is None:
        return 0
    return sum(
        t.numel() * t.element_size()
        for state in setup.optimizer.state.values()
        for t in state.values()
        if isinstance(t, Tensor)
    )


def cache_bytes(setup: Setup) -> int:
    """Bytes held by the setup's source cache (its tensors only)."""
    cache = setup.model.source_cache
    if cache is None:
        return 0
    entries = cache._memory.values()
    return sum(t.numel() * t.element_size() for tensors, *_ in entries for t in tensors)


# ---------------------------------------------------------------------- reporting
def machine_info() -> dict:
    """CPU, cores, RAM, load and library versions, for the record."""
    import peft
    import transformers

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        ram = 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1),
        "loadavg": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f}"


def check_target(value: float, bound: float, kind: str) -> str:
    """``met``/``missed`` for ``value <= bound`` (kind ``max``) or ``value >= bound`` (``min``)."""
    ok = value <= bound if kind == "max" else value >= bound
    return "met" if ok else "MISSED"
