"""Me-LLaMA-style continual pretraining of Llama-2 13B on 32 H100s.

Same 15 : 1 : 4 biomedical : clinical : general mix and 129B tokens as the 70B recipe. 13B at
4,096 tokens fits with TP2 (sequence parallel) and two pipeline stages, leaving DP8 for the
distributed optimizer to shard over.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/<name>.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medmegatron.config import (
    OptimizerConfig, ParallelConfig, PrecisionConfig, ScheduleConfig, TrainConfig,
    get_preset,
)
from recipes.common import ME_LLAMA_MIX, RecipeInfo, blend, iters_for_tokens

INFO = RecipeInfo(
    name="cpt_13b", gpus=32, gpu="h100-80gb", tokens=129e9,
    source="Me-LLaMA 13B continual pretraining (129B tokens, 15:1:4 mix, seq 4096)",
)


def config(data_root: str = "/data/medmegatron", run_dir: str = "runs/cpt_13b") -> TrainConfig:
    seq, gbs = 4096, 512
    return TrainConfig(
        run_dir=run_dir,
        model=get_preset("llama2-13b"),
        parallel=ParallelConfig(
            tensor_parallel=2, pipeline_parallel=2, sequence_parallel=True,
            use_distributed_optimizer=True,
        ),
        precision=PrecisionConfig(dtype="bf16"),
        optimizer=OptimizerConfig(lr=3e-5, min_lr=3e-6, weight_decay=0.1, clip_grad=1.0),
        schedule=ScheduleConfig(
            train_iters=iters_for_tokens(INFO.tokens, gbs, seq), micro_batch_size=1,
            global_batch_size=gbs, lr_warmup_iters=500, lr_decay_style="cosine",
        ),
        data=blend(data_root, ME_LLAMA_MIX, seq),
    )


def recipe(
    data_root: str = "/data/medmegatron", run_dir: str = "runs/cpt_13b",
) -> "nemo_run.Partial":
    """The NeMo-Run task: `pretrain_task(config=run.Config[TrainConfig])`."""
    from recipes.launch import as_task

    return as_task(config(data_root, run_dir))


if __name__ == "__main__":
    from recipes.launch import main

    main(config, INFO)
