"""Med42-style continual pretraining of Mixtral 8x7B on 64 H100s.

50B clinical + 15B general tokens (65B), seq 4,096, with a *rewarm* schedule: the released
checkpoint already finished its decay, so the LR climbs from 10 % of peak back to peak before a
cosine decay, which avoids the loss spike of restarting from zero. Layout from the published
Mixtral H100 runs: no TP (experts are small matmuls), EP8 inside a node, PP4 with 8 interleaved
one-layer chunks.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python recipes/<name>.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medmegatron.config import (
    OptimizerConfig, ParallelConfig, PrecisionConfig, ScheduleConfig, TrainConfig,
    get_preset,
)
from recipes.common import RecipeInfo, blend, iters_for_tokens

INFO = RecipeInfo(
    name="cpt_mixtral_8x7b", gpus=64, gpu="h100-80gb", tokens=65e9,
    source="Med42 (Mixtral 8x7B): 50B clinical + 15B general tokens, rewarmed LR",
)


def config(data_root: str = "/data/medmegatron", run_dir: str = "runs/cpt_mixtral_8x7b") -> TrainConfig:
    seq, gbs = 4096, 512
    return TrainConfig(
        run_dir=run_dir,
        model=get_preset("mixtral-8x7b"),
        parallel=ParallelConfig(
            tensor_parallel=1, pipeline_parallel=4, virtual_pipeline_parallel=8,
            expert_parallel=8, expert_tensor_parallel=1, sequence_parallel=False,
            use_distributed_optimizer=True, moe_token_dispatcher="alltoall",
        ),
        precision=PrecisionConfig(dtype="bf16"),
        optimizer=OptimizerConfig(lr=1e-5, min_lr=1e-6, weight_decay=0.1, clip_grad=1.0),
        schedule=ScheduleConfig(
            train_iters=iters_for_tokens(INFO.tokens, gbs, seq), micro_batch_size=1,
            global_batch_size=gbs, lr_warmup_iters=1000, lr_warmup_init_fraction=0.1,
            lr_decay_style="cosine",
        ),
        data=blend(data_root, {"clinical": 50.0, "general": 15.0}, seq),  # Med42: 50B + 15B tokens
    )


def recipe(
    data_root: str = "/data/medmegatron", run_dir: str = "runs/cpt_mixtral_8x7b",
) -> "nemo_run.Partial":
    """The NeMo-Run task: `pretrain_task(config=run.Config[TrainConfig])`."""
    from recipes.launch import as_task

    return as_task(config(data_root, run_dir))


if __name__ == "__main__":
    from recipes.launch import main

    main(config, INFO)
