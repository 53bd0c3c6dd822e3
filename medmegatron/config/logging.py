"""What a run records, and the guards that watch it (forgetting, spikes, NaN, preemption)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class LoggingConfig:
    log_interval: int = 1  # console lines every N steps (metrics.jsonl gets every step)
    tensorboard: bool = True
    progress_bar: bool = True
    plots: bool = True  # PNG curves in the run directory at the end
    # Weights & Biases project (optional, needs `pip install wandb`); None = off.
    wandb_project: Optional[str] = None
    # Dense peak TFLOP/s of one device for MFU; None = looked up from the GPU name (none on CPU).
    peak_tflops: Optional[float] = None


@dataclass
class MonitorConfig:
    # Data source (a `data.names` entry) whose validation loss guards against forgetting, e.g.
    # the general-domain replay set; None = the source named "general" if there is one.
    general_source: Optional[str] = None
    # Warn when that validation loss rises more than this fraction above its step-0 value.
    forgetting_threshold: float = 0.05
    # A training loss above (1 + spike_threshold) x its running mean is logged as a spike.
    spike_threshold: float = 0.5
    # Non-finite loss or gradient: 'skip' the update (up to max_skipped_steps) or 'abort'.
    nan_policy: str = "abort"
    max_skipped_steps: int = 10
    # On SIGTERM (Slurm preemption) finish the step, save a checkpoint and exit 0.
    checkpoint_on_sigterm: bool = True
