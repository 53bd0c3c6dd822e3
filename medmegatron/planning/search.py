"""Enumerate the layouts of a config for a GPU count and rank the ones that fit by speed.

The model, batch sizes and sequence length stay as the recipe sets them (they are training
hyperparameters); only the parallel layout, recompute and micro-batch size vary.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator, Optional

from medmegatron.config.train import TrainConfig
from medmegatron.errors import ConfigError
from medmegatron.planning.gpus import GpuSpec
from medmegatron.planning.plan import Plan, make_plan


def _divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def candidates(cfg: TrainConfig, gpus: int, gpu: GpuSpec) -> Iterator[TrainConfig]:
    m = cfg.model
    tps = [t for t in (1, 2, 4, 8) if t <= gpu.gpus_per_node and gpus % t == 0]
    pps = [p for p in _divisors(m.num_layers, 16) if gpus % p == 0]
    cps = [1, 2, 4] if cfg.data.seq_length >= 8192 else [1]
    eps = _divisors(m.num_moe_experts, gpu.gpus_per_node) if m.num_moe_experts else [1]
    mbss = sorted({1, 2, cfg.schedule.micro_batch_size})
    for tp, pp, cp, ep, mbs in itertools.product(tps, pps, cps, eps, mbss):
        chunks = m.num_layers // pp
        vps: list[Optional[int]] = [None]
        if pp > 1:
            vps += [v for v in _divisors(chunks, 20) if v > 1]
        for vp, recompute in itertools.product(vps, (None, "full")):
            parallel = dataclasses.replace(
                cfg.parallel, tensor_parallel=tp, pipeline_parallel=pp, virtual_pipeline_parallel=vp,
                context_parallel=cp, expert_parallel=ep, expert_tensor_parallel=None if ep == 1 else 1,
                sequence_parallel=tp > 1, recompute_granularity=recompute, recompute_num_layers=None,
            )
            schedule = dataclasses.replace(cfg.schedule, micro_batch_size=mbs)
            yield dataclasses.replace(cfg, parallel=parallel, schedule=schedule)


def search(
    cfg: TrainConfig, gpus: int, gpu: GpuSpec, price: Optional[float] = None,
) -> tuple[list[Plan], int]:
    """(feasible plans fastest first, those with under 10 % memory headroom last; layouts tried)."""
    feasible, tried = [], 0
    for candidate in candidates(cfg, gpus, gpu):
        tried += 1
        try:
            plan = make_plan(candidate, gpus, gpu, price)
        except ConfigError:
            continue
        if plan.feasible:
            feasible.append(plan)
    feasible.sort(key=lambda p: (p.tight, -p.throughput.tokens_per_s_per_gpu, p.peak.total))
    return feasible, tried
