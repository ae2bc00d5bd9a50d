"""4-bit (QLoRA) loading settings: the ``quantization`` section of an experiment config."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from flare_xlt.errors import FlareError

QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class QuantizationArgs:
    """How to quantize a backbone's linear layers while loading it (bitsandbytes).

    Attributes:
        load_in_4bit: load the linear layers in 4 bits (the paper's LLM setting).
        quant_type: ``nf4`` (the paper's) or ``fp4``.
        compute_dtype: dtype of the matmuls: ``float32`` (CPU), ``bfloat16`` or ``float16``.
        double_quant: also quantize the quantization constants (saves ~0.4 bit per weight).
    """

    load_in_4bit: bool = False
    quant_type: str = "nf4"
    compute_dtype: str = "float32"
    double_quant: bool = False

    def __post_init__(self) -> None:
        if self.quant_type not in QUANT_TYPES:
            raise FlareError(f"quant_type={self.quant_type!r}: choose one of {QUANT_TYPES}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise FlareError(
                f"compute_dtype={self.compute_dtype!r}: choose one of {sorted(COMPUTE_DTYPES)}"
            )

    def loading_options(self) -> dict:
        """``from_pretrained`` keyword arguments that load the model in 4 bits."""
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise FlareError(
                "quantization.load_in_4bit needs bitsandbytes: "
                "pip install 'flare-xlt[quantization]'"
            ) from None
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=self.quant_type,
            bnb_4bit_compute_dtype=COMPUTE_DTYPES[self.compute_dtype],
            bnb_4bit_use_double_quant=self.double_quant,
        )
        return {"quantization_config": config, "device_map": quantized_device_map()}


def quantized_device_map() -> dict | str:
    """Where a 4-bit model is loaded: this process's GPU (``LOCAL_RANK`` under DDP, so each
    rank holds its own copy), else the CPU. bitsandbytes needs it at load time."""
    if not torch.cuda.is_available():
        return "cpu"
    return {"": int(os.environ.get("LOCAL_RANK", 0))}
