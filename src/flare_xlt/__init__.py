"""flare-xlt: FLARE language fusion inside LoRA adapters, for any Hugging Face model."""

from flare_xlt import _quiet_imports  # noqa: F401  (first: before peft imports bitsandbytes)
from flare_xlt.baselines.xmixup import XMixupConfig, XMixupModel
from flare_xlt.cache import SourceCache
from flare_xlt.config import FlareConfig
from flare_xlt.errors import FlareError, ModelUnavailableError
from flare_xlt.latent import LatentEncoder
from flare_xlt.model import FlareModel

__all__ = [
    "FlareConfig",
    "FlareError",
    "FlareModel",
    "LatentEncoder",
    "ModelUnavailableError",
    "SourceCache",
    "XMixupConfig",
    "XMixupModel",
]
__version__ = "0.2.0"
