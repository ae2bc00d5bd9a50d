"""Rank awareness when a launcher (torchrun, accelerate) starts several processes.

Training itself is distributed by :func:`flare_xlt.training.loop.train` (through
``accelerate``); the recipes around it only need to let the main process write files
while the others wait.
"""

from __future__ import annotations

import logging
import os

import torch.distributed as dist
from accelerate import Accelerator

logger = logging.getLogger(__name__)


def is_main_process() -> bool:
    """True on the process of global rank 0 (or when no launcher set ``RANK``)."""
    return int(os.environ.get("RANK", "0")) == 0


def wait_for_everyone() -> None:
    """A barrier across processes, when a process group exists."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def info_on_main(accelerator: Accelerator, message: str, *args) -> None:
    """A plain log line, from the main process only."""
    if accelerator.is_main_process:
        logger.info(message, *args)
