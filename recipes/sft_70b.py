"""Instruction tuning of a (continually pretrained) Llama-2 70B on 64 H100s.

Me-LLaMA-style: ~214k medical and general instruction samples, 3 epochs, packed to 4,096
tokens, loss on responses only (`data.kind=sft`). Starts from the CPT checkpoint given as
`checkpoint.init_from`; same layout as the 70B pretraining recipe.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/<name>.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medmegatron.config import (
    CheckpointConfig, DataConfig, OptimizerConfig, ParallelConfig, PrecisionConfig, ScheduleConfig,
    TrainConfig,
    get_preset,
)
from recipes.common import RecipeInfo

SAMPLES, EPOCHS = 214_000, 3  # one packed 4,096-token sequence per sample: an upper bound
INFO = RecipeInfo(
    name="sft_70b", gpus=64, gpu="h100-80gb", tokens=SAMPLES * EPOCHS * 4096,
    source="Me-LLaMA-chat 70B instruction tuning (~214k samples, 3 epochs)",
)


def config(
    data_root: str = "/data/medmegatron", run_dir: str = "runs/sft_70b",
    init_from: str = "runs/cpt_70b",
) -> TrainConfig:
    seq, gbs = 4096, 128
    return TrainConfig(
        run_dir=run_dir,
        model=get_preset("llama2-70b"),
        parallel=ParallelConfig(
            tensor_parallel=4, pipeline_parallel=4, virtual_pipeline_parallel=5,
            sequence_parallel=True, use_distributed_optimizer=True,
        ),
        precision=PrecisionConfig(dtype="bf16"),
        optimizer=OptimizerConfig(lr=1e-5, min_lr=1e-6, weight_decay=0.0, clip_grad=1.0),
        schedule=ScheduleConfig(
            train_iters=-(-SAMPLES * EPOCHS // gbs), micro_batch_size=1, global_batch_size=gbs,
            lr_warmup_iters=50, lr_decay_style="cosine",
        ),
        data=DataConfig(paths=[f"{data_root}/instructions_sft_document"], seq_length=seq, kind="sft"),
        checkpoint=CheckpointConfig(init_from=init_from, save_interval=500),
    )


def recipe(
    data_root: str = "/data/medmegatron", run_dir: str = "runs/sft_70b",
) -> "nemo_run.Partial":
    """The NeMo-Run task: `pretrain_task(config=run.Config[TrainConfig])`."""
    from recipes.launch import as_task

    return as_task(config(data_root, run_dir))


if __name__ == "__main__":
    from recipes.launch import main

    main(config, INFO)
