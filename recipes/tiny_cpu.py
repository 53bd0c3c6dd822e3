"""The CPU demo (`make demo`): tiny Llama on 2 local processes (TP2, gloo), fp32, ~120k tokens.

Same code path as the GPU recipes (megatron-core GPTModel, tensor parallelism, distributed
optimizer, blended indexed datasets), sized to finish in minutes on a laptop CPU. The data
(`runs/demo/data/{pubmed,clinical,general}`) is what `medmegatron demo` prepares.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/<name>.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medmegatron.config import (
    CheckpointConfig, DataConfig, LoggingConfig, MonitorConfig, OptimizerConfig, ParallelConfig,
    PrecisionConfig, ScheduleConfig, TrainConfig,
    get_preset,
)
from recipes.common import RecipeInfo

INFO = RecipeInfo(
    name="tiny_cpu", gpus=2, gpu="h100-80gb", tokens=60 * 16 * 128,
    source="CPU run of the full stack: the layout and schedule of `make demo`",
)
BLEND = {"pubmed": 15.0, "clinical": 1.0, "general": 4.0}  # Me-LLaMA's mix, tiny sources


def config(data_root: str = "runs/demo/data", run_dir: str = "runs/demo") -> TrainConfig:
    seq, gbs = 128, 16
    total = sum(BLEND.values())
    return TrainConfig(
        run_dir=run_dir,
        model=get_preset("tiny-llama"),
        parallel=ParallelConfig(tensor_parallel=2, pipeline_parallel=1, use_distributed_optimizer=True),
        precision=PrecisionConfig(dtype="auto"),  # fp32 on CPU
        optimizer=OptimizerConfig(lr=2e-3, min_lr=2e-4, weight_decay=0.1, clip_grad=1.0),
        schedule=ScheduleConfig(
            train_iters=60, micro_batch_size=4, global_batch_size=gbs, lr_warmup_iters=6,
            lr_warmup_init_fraction=0.1, lr_decay_style="cosine",
        ),
        data=DataConfig(
            paths=[f"{data_root}/{source}" for source in BLEND], names=list(BLEND),
            weights=[w / total for w in BLEND.values()], seq_length=seq,
        ),
        checkpoint=CheckpointConfig(save_interval=30),
        logging=LoggingConfig(progress_bar=False, log_interval=5),
        # Watch the general-domain replay set: warn if its validation loss rises 5% above step 0.
        monitor=MonitorConfig(general_source="general", forgetting_threshold=0.05),
        eval_interval=20,
        eval_iters=2,
    )


def recipe(data_root: str = "runs/demo/data", run_dir: str = "runs/demo") -> "nemo_run.Partial":
    """The NeMo-Run task: `pretrain_task(config=run.Config[TrainConfig])`."""
    from recipes.launch import as_task

    return as_task(config(data_root, run_dir))


if __name__ == "__main__":
    from recipes.launch import main

    main(config, INFO)
