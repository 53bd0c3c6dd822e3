"""Instruction tuning of Mistral 7B with NEFTune noise on 8 H100s.

NEFTune (Jain et al. 2023) adds uniform noise of scale alpha/sqrt(L*d) to the input
embeddings during fine-tuning only; alpha = 5 is the value the paper uses for 7B models.
Responses-only loss (`data.kind=sft`); TP2 + SP for memory headroom, as in cpt_mistral_7b.
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

SAMPLES, EPOCHS = 200_000, 3
INFO = RecipeInfo(
    name="sft_mistral_7b_neftune", gpus=8, gpu="h100-80gb", tokens=SAMPLES * EPOCHS * 4096,
    source="NEFTune (alpha=5) instruction tuning of Mistral 7B",
)


def config(
    data_root: str = "/data/medmegatron", run_dir: str = "runs/sft_mistral_7b_neftune",
    init_from: str = "runs/cpt_mistral_7b",
) -> TrainConfig:
    seq, gbs = 4096, 128
    return TrainConfig(
        run_dir=run_dir,
        model=get_preset("mistral-7b"),
        parallel=ParallelConfig(
            tensor_parallel=2, pipeline_parallel=1, sequence_parallel=True,
            use_distributed_optimizer=True,
        ),
        precision=PrecisionConfig(dtype="bf16"),
        optimizer=OptimizerConfig(lr=5e-6, min_lr=5e-7, weight_decay=0.0, clip_grad=1.0),
        schedule=ScheduleConfig(
            train_iters=-(-SAMPLES * EPOCHS // gbs), micro_batch_size=1, global_batch_size=gbs,
            lr_warmup_iters=50, lr_decay_style="cosine",
        ),
        data=DataConfig(paths=[f"{data_root}/instructions_sft_document"], seq_length=seq, kind="sft"),
        checkpoint=CheckpointConfig(init_from=init_from, save_interval=500),
        neftune_noise_alpha=5.0,
    )


def recipe(
    data_root: str = "/data/medmegatron", run_dir: str = "runs/sft_mistral_7b_neftune",
) -> "nemo_run.Partial":
    """The NeMo-Run task: `pretrain_task(config=run.Config[TrainConfig])`."""
    from recipes.launch import as_task

    return as_task(config(data_root, run_dir))


if __name__ == "__main__":
    from recipes.launch import main

    main(config, INFO)
