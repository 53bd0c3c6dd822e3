"""Checkpointing: where, how often, and where to start from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class CheckpointConfig:
    save_interval: Optional[int] = None  # None = only at the end
    keep_last: Optional[int] = None  # None = keep all
    # Start from weights only (fresh optimizer/schedule), e.g. converted HF weights.
    init_from: Optional[str] = None
    # Resume exactly from the run directory's latest checkpoint, if there is one.
    resume: bool = True
    async_save: bool = False  # only on GPU; CPU runs save synchronously
