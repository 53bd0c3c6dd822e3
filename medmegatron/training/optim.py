"""DDP wrapping, megatron-core optimizer and LR schedule, built exactly from our config.

The effective values are read back from the constructed objects (not from our config) and
written to the run directory at step 0, so a silently overridden hyper-parameter is visible.
"""

from __future__ import annotations

import torch

from medmegatron.config import TrainConfig


def wrap_ddp(cfg: TrainConfig, chunks: list, transformer_config) -> list:
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.distributed.finalize_model_grads import finalize_model_grads

    ddp_config = DistributedDataParallelConfig(
        grad_reduce_in_fp32=True,
        overlap_grad_reduce=False,
        use_distributed_optimizer=cfg.parallel.use_distributed_optimizer,
        check_for_nan_in_grad=False,
    )
    wrapped = [
        DistributedDataParallel(
            config=transformer_config, ddp_config=ddp_config, module=chunk,
            # Megatron-LM's rule: only the first chunk buckets, so grads of later chunks
            # are reduced together with it.
            disable_bucketing=index > 0,
        )
        for index, chunk in enumerate(chunks)
    ]
    # The schedule calls this after the last backward: DP grad reduction, tied-embedding and
    # sequence-parallel norm grads across ranks.
    transformer_config.finalize_model_grads_func = finalize_model_grads
    return wrapped


def build_optimizer(cfg: TrainConfig, ddp_chunks: list, dtype: str):
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer

    o = cfg.optimizer
    config = OptimizerConfig(
        optimizer="adam",
        lr=o.lr,
        min_lr=o.min_lr,
        weight_decay=o.weight_decay,
        adam_beta1=o.adam_beta1,
        adam_beta2=o.adam_beta2,
        adam_eps=o.adam_eps,
        clip_grad=o.clip_grad,
        bf16=dtype == "bf16",
        fp16=dtype == "fp16",
        params_dtype={"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype],
        use_distributed_optimizer=cfg.parallel.use_distributed_optimizer,
    )
    return get_megatron_optimizer(config, ddp_chunks)


def build_scheduler(cfg: TrainConfig, optimizer):
    """LR in optimizer steps: warmup from `lr_warmup_init_fraction * lr`, then decay to min_lr."""
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    s, o = cfg.schedule, cfg.optimizer
    return OptimizerParamScheduler(
        optimizer,
        init_lr=s.lr_warmup_init_fraction * o.lr,
        max_lr=o.lr,
        min_lr=o.min_lr,
        lr_warmup_steps=s.warmup_iters(),
        lr_decay_steps=s.decay_iters(),
        lr_decay_style=s.lr_decay_style,
        start_wd=o.weight_decay,
        end_wd=o.weight_decay,
        wd_incr_steps=s.train_iters,
        wd_incr_style="constant",
        # A resumed run takes the schedule state from its checkpoint, never from a changed config.
        use_checkpoint_opt_param_scheduler=True,
        override_opt_param_scheduler=False,
    )


def effective_hyperparameters(optimizer, scheduler) -> dict:
    """What the constructed optimizer and schedule will actually do."""
    groups = []
    for group in optimizer.param_groups:
        groups.append({
            "params": sum(p.numel() for p in group["params"]),
            "weight_decay": group.get("weight_decay"),
            "betas": list(group.get("betas", ())),
            "eps": group.get("eps"),
            "lr_mult": group.get("lr_mult", 1.0),
        })
    return {
        "optimizer": type(optimizer).__name__,
        "clip_grad": optimizer.config.clip_grad,
        "param_groups": groups,
        "schedule": {
            "init_lr": scheduler.init_lr,
            "max_lr": scheduler.max_lr,
            "min_lr": scheduler.min_lr,
            "warmup_steps": scheduler.lr_warmup_steps,
            "decay_steps": scheduler.lr_decay_steps,
            "decay_style": scheduler.lr_decay_style,
        },
    }
