"""Predicted speed from a stated efficiency, and the time and cost of a token budget.

achieved FLOP/s per GPU = peak_bf16 x base[precision] x layout factors, where
  - base: fraction of the dense BF16 peak a well-tuned Megatron run reaches in its matmuls,
    0.55 for BF16 and 0.80 for FP8 (FP8 measured against the BF16 peak, as NeMo reports MFU);
  - pipeline bubble: 1 / (1 + (PP - 1) / (VP x microbatches));
  - communication on the critical path: 3 % per doubling of TP and of CP, 4 % per doubling of EP
    (all-to-all); data-parallel gradient reduction is assumed overlapped;
  - full recompute: the extra forward of recomputed layers costs time but is not model FLOPs.
The constants are assumptions stated once here; docs/planner.md lists the error against
published runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medmegatron.config.train import TrainConfig
from medmegatron.planning.flops import model_flops_per_token, recompute_flops_per_token
from medmegatron.planning.gpus import GpuSpec
from medmegatron.planning.layout import Layout

BASE_EFFICIENCY = {"bf16": 0.55, "fp8": 0.80}
TP_COST, CP_COST, EP_COST = 0.03, 0.03, 0.04


@dataclass(frozen=True)
class Throughput:
    flops_per_token: float  # model FLOPs
    flops_per_step: float  # model FLOPs of one global batch
    efficiency: float  # model FLOP/s achieved / BF16 dense peak (= MFU)
    bubble: float  # pipeline bubble as a fraction of compute time
    tokens_per_s_per_gpu: float
    tflops_per_gpu: float  # model TFLOP/s per GPU
    step_seconds: float


def layout_efficiency(cfg: TrainConfig, lay: Layout) -> tuple[float, float]:
    """(efficiency relative to the BF16 peak, pipeline bubble fraction)."""
    precision = "fp8" if cfg.precision.fp8 else "bf16"
    bubble = (lay.pp - 1) / (lay.vp * lay.num_microbatches)
    eff = BASE_EFFICIENCY[precision] / (1 + bubble)
    eff *= 1 - TP_COST * math.log2(lay.tp)
    eff *= 1 - CP_COST * math.log2(lay.cp)
    eff *= 1 - EP_COST * math.log2(lay.ep)
    return eff, bubble


def recomputed_fraction(cfg: TrainConfig, lay: Layout) -> float:
    if lay.recompute != "full":
        return 0.0
    per_chunk = cfg.model.num_layers // (lay.pp * lay.vp)
    return min(lay.recompute_num_layers or per_chunk, per_chunk) / per_chunk


def predict(cfg: TrainConfig, lay: Layout, gpu: GpuSpec) -> Throughput:
    m, s = cfg.model, lay.seq_length
    flops = model_flops_per_token(m, s)
    extra = recompute_flops_per_token(m, s, recomputed_fraction(cfg, lay))
    eff, bubble = layout_efficiency(cfg, lay)
    # The GPU executes flops + extra at the achieved rate; only `flops` counts as useful.
    hardware_rate = eff * gpu.bf16_tflops * 1e12
    tokens_per_s = hardware_rate / (flops + extra)
    step_tokens = lay.global_batch_size * s
    return Throughput(
        flops_per_token=flops, flops_per_step=flops * step_tokens,
        efficiency=tokens_per_s * flops / (gpu.bf16_tflops * 1e12), bubble=bubble,
        tokens_per_s_per_gpu=tokens_per_s, tflops_per_gpu=tokens_per_s * flops / 1e12,
        step_seconds=step_tokens / (tokens_per_s * lay.gpus),
    )


@dataclass(frozen=True)
class Budget:
    tokens: float
    gpu_hours: float
    days: float
    usd: float


def budget(tokens: float, tp: Throughput, gpus: int, usd_per_gpu_hour: float) -> Budget:
    gpu_hours = tokens / tp.tokens_per_s_per_gpu / 3600
    return Budget(tokens, gpu_hours, gpu_hours / gpus / 24, gpu_hours * usd_per_gpu_hour)
