"""One plan: a config on N GPUs of a type -> memory per rank, speed, time and cost, or refusal.

A layout is refused (never silently adjusted) when it cannot run: the config's own validation
for that world size, FP8 on a GPU without FP8, TP or EP spanning more than one NVLink node, or a
rank whose memory exceeds the device. Each reason names the numbers and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from medmegatron.config.train import TrainConfig
from medmegatron.errors import ConfigError
from medmegatron.planning.gpus import GIB, GpuSpec
from medmegatron.planning.layout import Layout, resolve_layout
from medmegatron.planning.memory import RankMemory, peak_rank_memory, rank_memory
from medmegatron.planning.throughput import Budget, Throughput, budget, predict

# Below this free fraction a layout "fits" on paper but OOMs in practice on allocator spikes
# (NCCL buffers growing, MoE token imbalance, fragmentation): reported, and ranked last by search.
MIN_HEADROOM = 0.10


@dataclass(frozen=True)
class Plan:
    config: TrainConfig
    layout: Layout
    gpu: GpuSpec
    stages: list[RankMemory]  # first (and last) pipeline stage
    peak: RankMemory
    throughput: Throughput
    budget: Optional[Budget]
    problems: list[str]  # why it cannot run; empty = feasible

    @property
    def feasible(self) -> bool:
        return not self.problems

    @property
    def headroom(self) -> float:
        """Free fraction of device memory on the binding rank."""
        return 1 - self.peak.total / (self.gpu.memory_gib * GIB)

    @property
    def tight(self) -> bool:
        return self.feasible and self.headroom < MIN_HEADROOM


def token_budget(cfg: TrainConfig) -> float:
    """Tokens the schedule consumes: iterations x global batch x sequence length."""
    return float(cfg.schedule.train_iters * cfg.schedule.global_batch_size * cfg.data.seq_length)


def _hardware_problems(cfg: TrainConfig, lay: Layout, gpu: GpuSpec) -> list[str]:
    problems = []
    if cfg.precision.fp8 and not gpu.fp8_tflops:
        problems.append(f"precision.fp8 needs FP8 tensor cores; {gpu.name} has none (set precision.fp8=null)")
    if lay.tp > gpu.gpus_per_node:
        problems.append(
            f"tensor_parallel={lay.tp} spans more than one {gpu.gpus_per_node}-GPU NVLink node: TP "
            "all-reduces every layer and is too slow over the network; use TP <= "
            f"{gpu.gpus_per_node} and add pipeline stages"
        )
    if lay.ep * lay.etp > gpu.gpus_per_node:
        problems.append(
            f"expert_parallel x expert_tensor_parallel = {lay.ep * lay.etp} spans more than one "
            f"{gpu.gpus_per_node}-GPU node (all-to-all over the network): reduce EP"
        )
    return problems


def _memory_problem(peak: RankMemory, gpu: GpuSpec, lay: Layout) -> Optional[str]:
    if peak.total <= gpu.memory_gib * GIB:
        return None
    hints = []
    if not lay.sequence_parallel and lay.tp > 1:
        hints.append("parallel.sequence_parallel=true")
    if lay.recompute != "full":
        hints.append("parallel.recompute_granularity=full")
    if not lay.distributed_optimizer:
        hints.append("parallel.use_distributed_optimizer=true")
    hints.append("a larger tensor_parallel/pipeline_parallel")
    if lay.micro_batch_size > 1:
        hints.append("a smaller schedule.micro_batch_size")
    return (
        f"does not fit: the {peak.stage} pipeline stage needs {peak.total / GIB:.1f} GiB per GPU "
        f"(weights {peak.weights / GIB:.1f}, gradients {peak.gradients / GIB:.1f}, optimizer "
        f"{peak.optimizer / GIB:.1f}, activations {peak.activations / GIB:.1f}, other "
        f"{(peak.fp8_cache + peak.logits + peak.overhead) / GIB:.1f}) but {gpu.name} has "
        f"{gpu.memory_gib:.1f} GiB; try {', '.join(hints)}"
    )


def make_plan(cfg: TrainConfig, gpus: int, gpu: GpuSpec, price: Optional[float] = None) -> Plan:
    """Plan `cfg` on `gpus` GPUs. Raises ConfigError if the layout is invalid for that count."""
    lay = resolve_layout(cfg, gpus)
    stages = [rank_memory(cfg, lay, "first")] + ([rank_memory(cfg, lay, "last")] if lay.pp > 1 else [])
    peak = peak_rank_memory(cfg, lay)
    problems = _hardware_problems(cfg, lay, gpu)
    mem = _memory_problem(peak, gpu, lay)
    if mem:
        problems.append(mem)
    tp = predict(cfg, lay, gpu)
    rate = gpu.usd_per_gpu_hour if price is None else price
    return Plan(cfg, lay, gpu, stages, peak, tp, budget(token_budget(cfg), tp, gpus, rate), problems)


def require_feasible(plan: Plan) -> Plan:
    if plan.problems:
        raise ConfigError(
            f"layout {plan.layout.short()} on {plan.layout.gpus} x {plan.gpu.name} is refused:\n  - "
            + "\n  - ".join(plan.problems)
        )
    return plan
