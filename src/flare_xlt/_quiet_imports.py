"""Silence a third-party start-up warning that does not apply to flare-xlt (imported first).

peft imports bitsandbytes when it is installed, and bitsandbytes then warns on every start
that an optional kernel for its CPU inference repacking of 4-bit weights is missing;
flare-xlt turns that repacking off (:func:`flare_xlt.layer.keep_4bit_weights_trainable`),
so the warning is noise.
"""

import logging

logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
