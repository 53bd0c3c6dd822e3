"""Tokens/s per device, model TFLOP/s and MFU (the planner's FLOPs formula), peak memory."""

from __future__ import annotations

import torch

from medmegatron.config import TrainConfig
from medmegatron.planning.flops import model_flops_per_token


def peak_tflops_per_device(cfg: TrainConfig) -> float | None:
    """Configured peak, else the datasheet number for a recognised GPU; None on CPU."""
    if cfg.logging.peak_tflops:
        return cfg.logging.peak_tflops
    if not torch.cuda.is_available():
        return None
    from medmegatron.planning.gpus import GPUS

    name = torch.cuda.get_device_name().lower()
    for key, spec in GPUS.items():
        if key.split("-")[0] in name:
            return spec.peak_tflops(fp8=cfg.precision.fp8 is not None)
    return None


def peak_memory_gb() -> float:
    """Peak device memory on GPU; peak resident memory of this process on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


class Throughput:
    def __init__(self, cfg: TrainConfig, world_size: int):
        self.flops_per_token = model_flops_per_token(cfg.model, cfg.data.seq_length)
        self.world_size = world_size
        self.peak = peak_tflops_per_device(cfg)

    def record(self, tokens: int, seconds: float) -> dict:
        per_device = tokens / seconds / self.world_size
        tflops = per_device * self.flops_per_token / 1e12
        out = {"tokens_per_s_per_device": per_device, "tflops_per_device": tflops,
               "max_memory_gb": peak_memory_gb()}
        if self.peak:
            out["mfu"] = tflops / self.peak
        return out
