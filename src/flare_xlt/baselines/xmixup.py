"""X-Mixup (Yang et al., ICLR 2022): the cross-lingual manifold-mixup baseline.

The English input and its target-language translation run through the same
LoRA-adapted model. At one transformer layer the target hidden states attend
to the English ones through a new multi-head cross-attention and are mixed
with what they read::

    h_t <- (1 - lam) * h_t + lam * CrossAttention(h_t, h_s, h_s)
    lam  = lam_0 * sigmoid(w * H + b)          one ratio per example

where ``H`` is the mean entropy of the target-to-English attention (a proxy
for how well the two sides align) and ``w``, ``b`` are learned (initialised
to 1 and 0 as in the authors' code). Training minimises
``(1 - alpha) CE(target) + alpha CE(English) + KL(p_English || p_target)``
(see :func:`xmixup_loss`). At test time the English side is the translation
of the test input, as for translate-test and FLARE.

Differences from the authors' code (yhy1117/X-Mixup), chosen to keep the
baseline model-agnostic:

* one mixing layer, at the block output (theirs mixes every layer in a range,
  after the self-attention sublayer, and reuses that layer's self-attention
  weights as the cross-attention); here new query and key projections, and the
  English states themselves as values (see :class:`MixupAttention`), so what is
  mixed into the residual stream is English states of the same layer;
* the entropy of the head-averaged target-to-English attention over real
  tokens (theirs: the mean of per-head entropies in both directions);
* no representation-MSE term, and LoRA instead of full fine-tuning;
* training always reads the gold English (theirs swaps in back-translated
  English with a probability that decays over training);
* predictions come from the mixed target pass alone (theirs average the
  English and target logits), so the English input shapes a prediction only
  through the mixing layer, as FLARE's does through its fusion.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError
from flare_xlt.fileio import read_json_object
from flare_xlt.inputs import check_ids
from flare_xlt.model import FlareModel, ParameterSummary

CONFIG_FILE = "xmixup_config.json"
WEIGHTS_FILE = "xmixup.safetensors"


@dataclass
class XMixupConfig:
    """Settings of the mixing layer and the loss.

    Attributes:
        layer: index of the transformer layer whose output is mixed; ``None`` =
            the middle layer (``num_hidden_layers // 2``).
        max_ratio: ``lam_0``, the largest share of the English-attended states.
        source_loss_weight: ``alpha``, the weight of the English pass's task loss.
        num_heads: heads of the cross-attention; ``None`` = the model's.
    """

    layer: int | None = None
    max_ratio: float = 0.5
    source_loss_weight: float = 0.4
    num_heads: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_ratio <= 1.0:
            raise FlareError(f"XMixupConfig.max_ratio must be in [0, 1], got {self.max_ratio!r}")
        if not 0.0 <= self.source_loss_weight < 1.0:
            raise FlareError(
                "XMixupConfig.source_loss_weight must be in [0, 1), "
                f"got {self.source_loss_weight!r}"
            )


def _read_config(path: Path) -> XMixupConfig:
    """The :class:`XMixupConfig` saved in ``path``; a :class:`FlareError` naming it if malformed."""
    data = read_json_object(path)
    known = {f.name for f in fields(XMixupConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise FlareError(f"{path} has unknown key(s) {unknown}; valid keys are {sorted(known)}")
    return XMixupConfig(**data)


class MixupAttention(nn.Module):
    """Target states attend to the English states of the same layer and are mixed with
    what they read, by an entropy-gated ratio.

    Queries and keys are learned per-head projections of the layer-normalised states; the
    values are the English states themselves, and the heads' attention maps are averaged.
    What is mixed in therefore lives in the target states' own residual space from the
    first step. (A new value/output projection, as in ``nn.MultiheadAttention``, mixes
    random features of another scale into the residual stream: with it, one NusaX epoch
    on Gemma-3-270M scored 37.9 macro-F1 on javanese and 12.9 on sundanese, against 75-78
    for LoRA.)
    """

    def __init__(self, hidden_size: int, num_heads: int, max_ratio: float):
        super().__init__()
        if hidden_size % num_heads:
            raise FlareError(
                f"XMixupConfig.num_heads={num_heads} does not divide hidden size {hidden_size}"
            )
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False)
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.entropy_scale = nn.Parameter(torch.ones(1))
        self.entropy_bias = nn.Parameter(torch.zeros(1))
        self.max_ratio = max_ratio

    def attention_weights(self, target: Tensor, source: Tensor, source_mask: Tensor) -> Tensor:
        """Head-averaged attention of each target token over the real English tokens.

        Args:
            target: ``[B, T, H]``; source: ``[B, S, H]``; source_mask: ``[B, S]`` (1 = token).

        Returns:
            ``[B, T, S]``, each row summing to 1 (0 where the example has no English token).
        """
        batch, _, hidden = target.shape
        heads = self.num_heads

        def per_head(states: Tensor, projection: nn.Linear) -> Tensor:  # -> [B, heads, L, d]
            projected = projection(self.norm(states))
            return projected.view(batch, -1, heads, hidden // heads).transpose(1, 2)

        query, key = per_head(target, self.query), per_head(source, self.key)
        scores = query @ key.transpose(-1, -2) / math.sqrt(hidden // heads)  # [B, heads, T, S]
        keep = source_mask.bool()[:, None, None, :]
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        return scores.softmax(-1).mean(1) * keep[:, 0].any(-1, keepdim=True)

    def forward(
        self, target: Tensor, target_mask: Tensor, source: Tensor, source_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Mix English information into the target states.

        Args:
            target: target hidden states ``[B, T, H]``; target_mask ``[B, T]`` (1 = token).
            source: English hidden states ``[B, S, H]``; source_mask ``[B, S]`` (1 = token).

        Returns:
            The mixed states ``[B, T, H]`` (padding positions, and examples without
            English tokens, unchanged) and the mixing ratio of each example ``[B]``.
        """
        weights = self.attention_weights(target, source, source_mask)  # [B, T, S]
        attended = weights @ source  # [B, T, H]
        entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1)  # [B, T]
        valid = target_mask.to(entropy.dtype)
        mean_entropy = (entropy * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)  # [B]
        ratio = self.max_ratio * torch.sigmoid(
            self.entropy_scale * mean_entropy + self.entropy_bias
        )
        ratio = ratio * source_mask.bool().any(-1)  # nothing to read: nothing mixed in
        mixed = torch.lerp(target, attended, ratio[:, None, None].to(target.dtype))
        return torch.where(valid[..., None].bool(), mixed, target), ratio


@dataclass
class XMixupOutput:
    """What :class:`XMixupModel` returns.

    Attributes:
        logits: the mixed target pass's logits (``[B, T, V]``, or ``[B, C]`` for a head).
        source_logits: the English pass's logits (``[B, S, V]``, or ``[B, C]`` for a head).
        mixup_ratio: the mixing ratio of each example ``[B]``.
    """

    logits: Tensor
    source_logits: Tensor
    mixup_ratio: Tensor


def xmixup_loss(
    target_logits: Tensor, source_logits: Tensor, labels: Tensor, source_weight: float
) -> Tensor:
    """``(1 - alpha) CE(target) + alpha CE(English) + KL(p_English || p_target)``.

    Args:
        target_logits, source_logits: class logits ``[B, C]``; labels ``[B]``.
        source_weight: ``alpha``.
    """
    cross_entropy = nn.functional.cross_entropy
    task = (1 - source_weight) * cross_entropy(target_logits, labels) + (
        source_weight * cross_entropy(source_logits, labels)
    )
    consistency = nn.functional.kl_div(
        target_logits.log_softmax(-1), source_logits.log_softmax(-1), log_target=True,
        reduction="batchmean",
    )  # fmt: skip
    return task + consistency


class XMixupModel(nn.Module):
    """A LoRA-adapted model whose target pass is mixed with its English pass at one layer.

    Inputs are the target text ``input_ids``/``attention_mask`` ``[B, T]`` and its
    English side ``source_input_ids``/``source_attention_mask`` ``[B, S]``. Build it
    with :meth:`from_base` or :meth:`from_pretrained`. Not for gradient checkpointing: the
    mixing hook reads state that a recomputation in the backward pass would no longer see.
    """

    def __init__(self, lora: FlareModel, config: XMixupConfig):
        super().__init__()
        self.lora = lora
        layers = transformer_layers(lora.hf_model)
        layer = len(layers) // 2 if config.layer is None else config.layer
        if not 0 <= layer < len(layers):
            raise FlareError(
                f"XMixupConfig.layer={layer} is out of range: the model has {len(layers)} layers"
            )
        self.xmixup_config = XMixupConfig(**{**asdict(config), "layer": layer})
        text_config = lora.config.get_text_config()
        heads = config.num_heads or text_config.num_attention_heads
        reference = next(lora.hf_model.parameters())
        self.mixer = MixupAttention(text_config.hidden_size, heads, config.max_ratio).to(
            device=reference.device, dtype=reference.dtype
        )
        self._layer = layers[layer]
        self._english_states: Tensor | None = None
        self._mixing: tuple[Tensor, Tensor, Tensor] | None = None
        self._ratio: Tensor | None = None
        self._layer.register_forward_hook(self._at_layer_output)

    @classmethod
    def from_base(
        cls, base_model: nn.Module, lora_config: FlareConfig, config: XMixupConfig | None = None
    ) -> XMixupModel:
        """Add a fresh LoRA adapter (``lora_config.source`` must be None) and a mixing layer."""
        if lora_config.source is not None:
            raise FlareError("X-Mixup trains a plain LoRA adapter: use FlareConfig(source=None)")
        return cls(FlareModel.from_base(base_model, lora_config), config or XMixupConfig())

    @classmethod
    def from_pretrained(cls, base_model: nn.Module, directory: str | Path) -> XMixupModel:
        """Load what :meth:`save_pretrained` wrote onto ``base_model``."""
        path = Path(directory, CONFIG_FILE)
        if not path.is_file():
            raise FlareError(f"{directory} holds no X-Mixup model ({CONFIG_FILE} is missing)")
        config = _read_config(path)
        weights = Path(directory, WEIGHTS_FILE)
        if not weights.is_file():
            raise FlareError(f"{weights} is missing: save the X-Mixup model again")
        model = cls(FlareModel.from_pretrained(base_model, directory), config)
        model.mixer.load_state_dict(load_file(str(weights)))
        return model

    def save_pretrained(self, directory: str | Path) -> None:
        """The LoRA adapter (as :class:`FlareModel` saves it), the mixer and its config."""
        self.lora.save_pretrained(directory)
        state = {k: v.contiguous() for k, v in self.mixer.state_dict().items()}
        save_file(state, str(Path(directory, WEIGHTS_FILE)))
        Path(directory, CONFIG_FILE).write_text(json.dumps(asdict(self.xmixup_config), indent=2))

    @property
    def config(self):
        """The transformers config of the base model."""
        return self.lora.config

    @property
    def _no_split_modules(self) -> list[str] | None:
        """The base model's transformer blocks, so FSDP can wrap one block at a time."""
        return self.lora._no_split_modules

    def trainable_parameters(self) -> ParameterSummary:
        return ParameterSummary.of(self)

    def loss(self, target_logits: Tensor, source_logits: Tensor, labels: Tensor) -> Tensor:
        """:func:`xmixup_loss` with this model's ``source_loss_weight``."""
        weight = self.xmixup_config.source_loss_weight
        return xmixup_loss(target_logits, source_logits, labels, weight)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        source_input_ids: Tensor | None = None,
        source_attention_mask: Tensor | None = None,
        **kwargs,
    ) -> XMixupOutput:
        """English pass (recording the mixing layer's output), then the mixed target pass.

        ``kwargs`` (e.g. ``logits_to_keep``) go to both passes; both train the adapter.
        """
        if source_input_ids is None or source_attention_mask is None:
            raise FlareError("X-Mixup needs the English side: source_input_ids/attention_mask")
        check_ids(
            "source_input_ids",
            source_input_ids,
            source_attention_mask,
            "source_attention_mask",
            input_ids.shape[0],
        )
        self._mixing = None  # the English pass: the hook records the layer's output
        source = self.lora(
            input_ids=source_input_ids, attention_mask=source_attention_mask, **kwargs
        )
        english, self._english_states = self._english_states, None
        self._mixing = (english, source_attention_mask, attention_mask)
        try:
            target = self.lora(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        finally:
            self._mixing = None
        return XMixupOutput(target.logits, source.logits, self._ratio)

    def _at_layer_output(self, module: nn.Module, args, output):
        """Forward hook of the mixing layer: record (English pass) or mix (target pass)."""
        hidden = output[0] if isinstance(output, tuple) else output  # [B, T, H]
        if self._mixing is None:
            self._english_states = hidden
            return None
        english, english_mask, target_mask = self._mixing
        mixed, self._ratio = self.mixer(hidden, target_mask, english, english_mask)
        return (mixed, *output[1:]) if isinstance(output, tuple) else mixed


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks: the ModuleList as long as ``num_hidden_layers``."""
    count = model.config.get_text_config().num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise FlareError(f"cannot find the {count} transformer layers of {type(model).__name__}")
