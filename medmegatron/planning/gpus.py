"""GPU specs the planner needs: memory, dense peak FLOP/s and an assumed price per GPU-hour.

Peaks are NVIDIA's dense (no sparsity) datasheet numbers for SXM parts. Memory is what the driver
reports as total (nvidia-smi), not the marketing number. Prices are placeholder on-demand cloud
rates; pass `--price` for your own contract, since cost is the number most often asked and the
least knowable from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from medmegatron.errors import ConfigError

GIB = 1024**3


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gib: float  # total device memory as reported by the driver
    bf16_tflops: float  # dense BF16 tensor-core peak
    fp8_tflops: Optional[float]  # dense FP8 peak; None = no FP8 tensor cores
    gpus_per_node: int  # NVLink domain used for TP/EP placement
    usd_per_gpu_hour: float  # assumption; override with --price

    def peak_tflops(self, fp8: bool) -> float:
        return self.fp8_tflops if fp8 and self.fp8_tflops else self.bf16_tflops


GPUS: dict[str, GpuSpec] = {
    "h100-80gb": GpuSpec("h100-80gb", 81559 / 1024, 989.0, 1979.0, 8, 2.50),
    "h200": GpuSpec("h200", 143771 / 1024, 989.0, 1979.0, 8, 3.50),
    "a100-80gb": GpuSpec("a100-80gb", 81920 / 1024, 312.0, None, 8, 1.60),
}


def get_gpu(name: str) -> GpuSpec:
    if name not in GPUS:
        raise ConfigError(f"unknown GPU '{name}': choose one of {', '.join(GPUS)}")
    return GPUS[name]
