"""The CPU demo (`make demo`): tiny Llama, one process, fp32, a few hundred thousand tokens.

Same code path as the GPU recipes (megatron-core GPTModel, distributed optimizer, indexed
datasets), sized to finish in minutes on a laptop CPU.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/<name>.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nemo_run as run

from medmegatron.config import (
    DataConfig, OptimizerConfig, ParallelConfig, PrecisionConfig, ScheduleConfig, TrainConfig,
    get_preset,
)
from recipes.common import RecipeInfo, as_task, iters_for_tokens, main

INFO = RecipeInfo(
    name="tiny_cpu", gpus=1, gpu="h100-80gb", tokens=20 * 8 * 128,
    source="CPU smoke run of the full stack",
)


def config(data_root: str = "runs/demo/data", run_dir: str = "runs/demo") -> TrainConfig:
    seq, gbs = 128, 8
    return TrainConfig(
        run_dir=run_dir,
        model=get_preset("tiny-llama"),
        parallel=ParallelConfig(tensor_parallel=1, pipeline_parallel=1, use_distributed_optimizer=True),
        precision=PrecisionConfig(dtype="fp32"),
        optimizer=OptimizerConfig(lr=1e-3, min_lr=1e-4, weight_decay=0.01),
        schedule=ScheduleConfig(
            train_iters=20, micro_batch_size=2, global_batch_size=gbs, lr_warmup_iters=2,
            lr_decay_style="cosine",
        ),
        data=DataConfig(paths=[f"{data_root}/demo_text_document"], seq_length=seq),
    )


def recipe(data_root: str = "runs/demo/data", run_dir: str = "runs/demo") -> run.Partial:
    """The NeMo-Run task: `pretrain_task(config=run.Config[TrainConfig])`."""
    return as_task(config(data_root, run_dir))


if __name__ == "__main__":
    main(config, INFO)
