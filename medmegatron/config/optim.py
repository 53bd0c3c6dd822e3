"""Optimizer and learning-rate schedule, applied exactly as written here (and printed at step 0)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OptimizerConfig:
    lr: float = 3e-4
    min_lr: float = 3e-5
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    clip_grad: float = 1.0


@dataclass
class ScheduleConfig:
    train_iters: int = 100
    micro_batch_size: int = 2
    global_batch_size: int = 8
    lr_warmup_iters: int = 0
    # Warmup as a fraction of train_iters instead (Med42: 0.01); overrides lr_warmup_iters.
    lr_warmup_fraction: float | None = None
    # Rewarm from a fraction of the peak LR (Med42: 0.1); 0 = classic warmup from zero.
    lr_warmup_init_fraction: float = 0.0
    lr_decay_style: str = "cosine"  # constant | linear | cosine
    lr_decay_iters: int | None = None  # None = train_iters

    def warmup_iters(self) -> int:
        if self.lr_warmup_fraction is not None:
            return round(self.lr_warmup_fraction * self.train_iters)
        return self.lr_warmup_iters

    def decay_iters(self) -> int:
        return self.lr_decay_iters or self.train_iters
