from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoggingConfig:
    log_interval: int = 1
    tensorboard: bool = True
    progress_bar: bool = True
