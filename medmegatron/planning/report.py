"""Human-readable plan and search output (plain text, fixed columns, GiB and SI units)."""

from __future__ import annotations

from medmegatron.planning.gpus import GIB
from medmegatron.planning.params import total_params
from medmegatron.planning.plan import Plan
from medmegatron.planning.throughput import BASE_EFFICIENCY


def _gib(n: float) -> str:
    return f"{n / GIB:7.2f}"


def format_plan(plan: Plan, title: str) -> str:
    lay, gpu, tp, cfg = plan.layout, plan.gpu, plan.throughput, plan.config
    precision = "fp8" if cfg.precision.fp8 else cfg.precision.resolved_dtype(True)
    lines = [
        f"{title}: {cfg.model.name} ({total_params(cfg.model) / 1e9:.1f}B params) on {lay.gpus} x {gpu.name}",
        f"layout   {lay.short()}  |  seq {lay.seq_length}, global batch {lay.global_batch_size}, "
        f"{lay.num_microbatches} microbatches/step, {precision}",
        "",
        "memory per GPU (GiB)         " + "  ".join(f"{m.stage + ' stage':>12}" for m in plan.stages),
    ]
    rows = [
        ("parameters (millions)", lambda m: f"{m.params / 1e6:7.0f}"),
        ("weights", lambda m: _gib(m.weights)),
        ("gradients (fp32)", lambda m: _gib(m.gradients)),
        ("optimizer (Adam" + (", sharded)" if lay.distributed_optimizer else ")"),
         lambda m: _gib(m.optimizer)),
        ("fp8 weight cache", lambda m: _gib(m.fp8_cache)),
        (f"activations (recompute: {lay.recompute or 'none'})", lambda m: _gib(m.activations)),
        ("  ...if no recompute", lambda m: _gib(m.activations_no_recompute)),
        ("  ...if full recompute", lambda m: _gib(m.activations_full_recompute)),
        ("in-flight microbatch-chunks", lambda m: f"{m.in_flight:7d}"),
        ("logits (last stage)", lambda m: _gib(m.logits)),
        ("CUDA/NCCL + fragmentation", lambda m: _gib(m.overhead)),
        ("total", lambda m: _gib(m.total)),
    ]
    for name, fmt in rows:
        lines.append(f"  {name:<28}" + "  ".join(f"{fmt(m):>12}" for m in plan.stages))
    lines.append(f"  {'device capacity':<28}{gpu.memory_gib:12.2f}")
    if lay.recompute == "selective":
        lines.append("  note: selective recompute (core attention) saves ~nothing with fused/flash "
                     "attention; use recompute_granularity=full to trade compute for memory")
    lines += [
        "",
        f"compute  {tp.flops_per_token / 1e9:.1f} GFLOP/token, {tp.flops_per_step / 1e15:.1f} PFLOP/step "
        f"(model FLOPs; Narayanan et al. 2021 incl. attention)",
        f"speed    {tp.tokens_per_s_per_gpu:,.0f} tokens/s/GPU, {tp.tflops_per_gpu:,.0f} TFLOP/s/GPU, "
        f"MFU {100 * tp.efficiency:.1f}% of {gpu.bf16_tflops:.0f} TFLOP/s BF16 peak, "
        f"{tp.step_seconds:.2f} s/step, pipeline bubble {100 * tp.bubble:.1f}%",
        f"         (assumed base efficiency {BASE_EFFICIENCY['fp8' if cfg.precision.fp8 else 'bf16']:.2f} "
        "x layout factors; see docs/planner.md)",
    ]
    if plan.budget:
        b = plan.budget
        lines.append(
            f"budget   {b.tokens / 1e9:,.1f}B tokens: {b.gpu_hours:,.0f} GPU-hours, {b.days:.1f} days on "
            f"{lay.gpus} GPUs, ${b.usd:,.0f} at ${b.usd / b.gpu_hours:.2f}/GPU-hour"
        )
    lines.append("")
    if plan.feasible:
        lines.append(f"verdict  FITS (peak {plan.peak.total / GIB:.1f} of {gpu.memory_gib:.1f} GiB on the "
                     f"{plan.peak.stage} stage, {100 * plan.headroom:.0f}% free)")
        if plan.tight:
            lines.append("  warning: under 10% headroom; runs this close to the limit OOM on allocator "
                         "spikes. Prefer a layout from --search that is not marked 'tight'")
    else:
        lines.append("verdict  REFUSED:")
        lines += [f"  - {p}" for p in plan.problems]
    return "\n".join(lines)


def format_search(plans: list[Plan], tried: int, gpus: int, gpu_name: str, top: int) -> str:
    if not plans:
        return f"none of {tried} layouts fits on {gpus} x {gpu_name}"
    lines = [
        f"{len(plans)} of {tried} layouts fit on {gpus} x {gpu_name}; fastest first:",
        f"  {'#':>3}  {'layout':<44} {'tok/s/GPU':>10} {'MFU':>6} {'peak GiB':>9} {'days':>7} {'GPU-h':>10}",
        "  ('tight' = under 10% memory headroom: ranked last, likely to OOM in practice)",
    ]
    for i, p in enumerate(plans[:top], 1):
        days = f"{p.budget.days:7.1f}" if p.budget else "      -"
        hours = f"{p.budget.gpu_hours:10,.0f}" if p.budget else "         -"
        lines.append(
            f"  {i:>3}  {p.layout.short():<44} {p.throughput.tokens_per_s_per_gpu:10,.0f} "
            f"{100 * p.throughput.efficiency:5.1f}% {p.peak.total / GIB:9.1f} {days} {hours}"
            + ("  tight" if p.tight else "")
        )
    return "\n".join(lines)
