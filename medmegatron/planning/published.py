"""Published large-scale runs the planner is checked against (tests and docs/planner.md).

Each row is the layout as published; fields a source does not state (global batch size) are
marked as assumptions in `note`. `python -m medmegatron.planning.published` prints the table
for the docs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from medmegatron.config import (
    DataConfig, ParallelConfig, PrecisionConfig, ScheduleConfig, TrainConfig, get_preset,
)
from medmegatron.planning.gpus import GIB, get_gpu
from medmegatron.planning.plan import Plan, make_plan


@dataclass(frozen=True)
class PublishedRun:
    name: str
    source: str
    preset: str
    gpus: int
    gpu: str
    parallel: dict
    seq_length: int
    micro_batch_size: int
    global_batch_size: int
    fp8: Optional[str] = None
    tokens: Optional[float] = None  # for GPU-hour rows
    # Published numbers: tokens_per_s_per_gpu, tflops_per_gpu, gpu_hours, fits (bool).
    published: dict = field(default_factory=dict)
    note: str = ""

    def config(self) -> TrainConfig:
        iters = 1
        if self.tokens:
            iters = round(self.tokens / (self.global_batch_size * self.seq_length))
        return TrainConfig(
            model=get_preset(self.preset),
            parallel=ParallelConfig(**self.parallel),
            precision=PrecisionConfig(dtype="bf16", fp8=self.fp8),
            schedule=ScheduleConfig(train_iters=iters, micro_batch_size=self.micro_batch_size,
                                    global_batch_size=self.global_batch_size),
            data=DataConfig(seq_length=self.seq_length),
        )

    def plan(self) -> Plan:
        return make_plan(self.config(), self.gpus, get_gpu(self.gpu))


_DENSE = dict(sequence_parallel=True, use_distributed_optimizer=True)

RUNS: list[PublishedRun] = [
    PublishedRun(
        "Llama-2 70B FP8", "NeMo performance summary", "llama2-70b", 64, "h100-80gb",
        dict(tensor_parallel=4, pipeline_parallel=4, virtual_pipeline_parallel=20, **_DENSE),
        4096, 1, 128, fp8="delayed",
        published={"tokens_per_s_per_gpu": 1728, "tflops_per_gpu": 768},
        note="GBS 128, MBS 1 assumed",
    ),
    PublishedRun(
        "Llama-3 70B FP8", "Megatron-Bridge performance summary", "llama3-70b", 64, "h100-80gb",
        dict(tensor_parallel=4, pipeline_parallel=8, virtual_pipeline_parallel=5, context_parallel=2,
             **_DENSE),
        8192, 1, 128, fp8="delayed",
        published={"tokens_per_s_per_gpu": 1664, "tflops_per_gpu": 731},
        note="CP2 (DP1) as in the published 8k layouts, GBS 128, MBS 1 assumed; with CP1 the "
        "planner predicts 89 GiB on the first stage (OOM)",
    ),
    PublishedRun(
        "Mixtral 8x7B BF16", "Megatron-LM MoE README", "mixtral-8x7b", 64, "h100-80gb",
        dict(tensor_parallel=1, pipeline_parallel=4, virtual_pipeline_parallel=8, expert_parallel=8,
             expert_tensor_parallel=1, use_distributed_optimizer=True),
        4096, 1, 256, published={"tflops_per_gpu": 468},
        note="seq 4096, GBS 256, MBS 1 assumed",
    ),
    PublishedRun(
        "Meditron-70B", "Meditron paper (Chen et al. 2023)", "llama2-70b", 128, "a100-80gb",
        dict(tensor_parallel=8, pipeline_parallel=8, sequence_parallel=True,
             use_distributed_optimizer=True),
        4096, 2, 1024, published={"fits": True},
        note="ran on 128 A100-80GB at TP8/PP8/DP2, MBS 2; GBS 1024 assumed",
    ),
    PublishedRun(
        "Me-LLaMA 70B, one epoch", "Me-LLaMA paper (Xie et al. 2024)", "llama2-70b", 160, "a100-80gb",
        dict(tensor_parallel=8, pipeline_parallel=4, **_DENSE),
        4096, 1, 1000, tokens=129e9, published={"gpu_hours": 160 * 700},
        note="~160 A100 x 700 h for 129B tokens; layout TP8/PP4/DP5 and GBS 1000 assumed",
    ),
]


def predicted(run: PublishedRun, plan: Plan) -> dict:
    """The planner's numbers for the metrics `run` publishes."""
    out = {}
    for key in run.published:
        if key == "tokens_per_s_per_gpu":
            out[key] = plan.throughput.tokens_per_s_per_gpu
        elif key == "tflops_per_gpu":
            out[key] = plan.throughput.tflops_per_gpu
        elif key == "gpu_hours":
            out[key] = plan.budget.gpu_hours
        elif key == "fits":
            out[key] = plan.feasible
    return out


def markdown_table() -> str:
    rows = [
        "| Run | Layout | GPUs | Metric | Published | Planner | Error |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    names = {"tokens_per_s_per_gpu": "tokens/s/GPU", "tflops_per_gpu": "TFLOP/s/GPU",
             "gpu_hours": "GPU-hours", "fits": "fits in memory"}
    for run in RUNS:
        plan = run.plan()
        for key, value in predicted(run, plan).items():
            pub = run.published[key]
            if key == "fits":
                shown = f"{'yes' if value else 'no'} (peak {plan.peak.total / GIB:.1f} GiB)"
                err = "agrees" if value == pub else "DISAGREES"
                pub_s = "yes" if pub else "no"
            else:
                shown, pub_s = f"{value:,.0f}", f"{pub:,.0f}"
                err = f"{100 * (value - pub) / pub:+.1f}%"
            rows.append(f"| {run.name} ({run.source}) | {plan.layout.short()} | {run.gpus} x "
                        f"{run.gpu} | {names[key]} | {pub_s} | {shown} | {err} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
