"""The planner's throughput prediction for a train stage, written before it starts.

The report puts it next to the measured tokens/s, which is how a user learns whether the planner's
efficiency assumptions hold on their cluster. On a GPU the device is the one torch sees (or
`logging.peak_tflops`); on CPU there is no datasheet, so the peak is this machine's measured
fp32 matmul rate per rank - with the planner's GPU efficiency constants, so expect a tiny CPU model
(overhead-bound, not matmul-bound) to land well below the prediction.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def measured_cpu_tflops(threads: int, size: int = 512, repeats: int = 8) -> float:
    """Dense fp32 matmul TFLOP/s of one rank using `threads` threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)
    return 2 * size**3 * repeats / seconds / 1e12


def device_spec(cfg, nproc: int):
    """(GpuSpec, how the peak was obtained) for the hardware this stage runs on."""
    import torch

    from medmegatron.planning.gpus import GPUS, GpuSpec

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0).lower()
        for key, spec in GPUS.items():
            if key.split("-")[0] in name:
                return spec, f"datasheet ({key})"
    if cfg.logging.peak_tflops:
        return GpuSpec("configured", 80.0, cfg.logging.peak_tflops, None, 8, 0.0), "logging.peak_tflops"
    threads = max(1, (os.cpu_count() or 1) // max(1, nproc))
    peak = measured_cpu_tflops(threads)
    return GpuSpec("cpu", 64.0, peak, None, max(1, nproc), 0.0), f"measured fp32 matmul, {threads} thread(s)/rank"


def write_prediction(cfg, nproc: int, run_dir: Path) -> dict:
    from medmegatron.planning.layout import resolve_layout
    from medmegatron.planning.throughput import predict

    gpu, how = device_spec(cfg, nproc)
    layout = resolve_layout(cfg, nproc)
    tp = predict(cfg, layout, gpu)
    out = {"device": gpu.name, "peak_tflops": gpu.bf16_tflops, "peak_source": how, "efficiency": tp.efficiency,
           "predicted_tokens_per_s_per_device": tp.tokens_per_s_per_gpu,
           "predicted_step_seconds": tp.step_seconds, "predicted_tflops_per_device": tp.tflops_per_gpu,
           "ranks": nproc, "layout": layout.short()}
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "planner_prediction.json.tmp"
    tmp.write_text(json.dumps(out, indent=2))
    tmp.replace(run_dir / "planner_prediction.json")
    return out

