"""Baselines FLARE is compared with that need their own model code (beyond LoRA and prompts).

* :mod:`flare_xlt.baselines.xmixup`: X-Mixup (Yang et al., 2022), one mixing layer whose
  attention reads that layer's English states.
"""
