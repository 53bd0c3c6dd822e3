"""`pretrain(config)`: the training loop, readable top to bottom.

Called once per rank (under torchrun, or alone for a world of one). Everything parallel is
megatron-core's: process groups, GPTModel, DDP + distributed optimizer, pipeline schedules,
dist checkpoints. This file only orders the calls and records what happened.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch.distributed as dist
import yaml

from medmegatron.config import TrainConfig, config_to_dict, validate
from medmegatron.errors import ConfigError
from medmegatron.models import build_model
from medmegatron.runtime.distributed import init_model_parallel, init_process_group
from medmegatron.tokenizers import load_tokenizer
from medmegatron.training import checkpointing as ckpt
from medmegatron.training.data import MicrobatchIterator, build_datasets
from medmegatron.training.metrics import MetricsLogger
from medmegatron.training.optim import (build_optimizer, build_scheduler,
                                        effective_hyperparameters, wrap_ddp)
from medmegatron.training.step import eval_step, train_step


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    losses: list[float]
    checkpoint: str | None
    start_iteration: int
    valid_loss: float | None


def _check_tokenizer(cfg: TrainConfig, tokenizer) -> None:
    if tokenizer.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            f"the tokenizer has {tokenizer.vocab_size} ids but model.vocab_size="
            f"{cfg.model.vocab_size}: token ids would index past the embedding. Use the model's "
            "own tokenizer (data.tokenizer) or a preset with a matching vocabulary"
        )


def _validate_loss(chunks, datasets, cfg, dp_rank, dp_size, num_microbatches, position) -> float:
    iterators = [MicrobatchIterator(datasets.valid, cfg.schedule.micro_batch_size, dp_rank, dp_size,
                                    position) for _ in chunks]
    loss_sum = tokens = 0.0
    for _ in range(cfg.eval_iters):
        s, t = eval_step(chunks, iterators, num_microbatches, cfg.data.seq_length,
                         cfg.schedule.micro_batch_size)
        loss_sum += s
        tokens += t
    return loss_sum / max(tokens, 1)


def pretrain(cfg: TrainConfig) -> TrainResult:
    env = init_process_group()
    validate(cfg, env.world_size, cuda_available=not env.cpu)
    init_model_parallel(cfg.parallel, cfg.seed)
    from megatron.core import parallel_state

    run_dir = Path(cfg.run_dir)
    ckpt_root = run_dir / "checkpoints"
    is_logger = env.rank == 0
    if is_logger:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

    tokenizer = load_tokenizer(cfg.data.tokenizer)
    _check_tokenizer(cfg, tokenizer)
    chunks = build_model(cfg, cuda=not env.cpu)
    dtype = cfg.precision.resolved_dtype(not env.cpu)
    model = wrap_ddp(cfg, chunks, chunks[0].config)
    optimizer = build_optimizer(cfg, model, dtype)
    scheduler = build_scheduler(cfg, optimizer)

    start_iter = 0
    latest = ckpt.latest_checkpoint(ckpt_root) if cfg.checkpoint.resume else None
    if latest is not None:
        start_iter = int(ckpt.load_checkpoint(latest, model, optimizer, scheduler)["iteration"])
    elif cfg.checkpoint.init_from:
        ckpt.load_weights(ckpt.resolve_checkpoint_dir(cfg.checkpoint.init_from), model)
        optimizer.reload_model_params()  # refresh fp32 master copies from the loaded weights

    datasets = build_datasets(cfg, tokenizer, cfg.data.cache_dir or str(run_dir / "data_cache"))
    dp_rank = parallel_state.get_data_parallel_rank()
    dp_size = parallel_state.get_data_parallel_world_size()
    s = cfg.schedule
    num_microbatches = s.global_batch_size // (s.micro_batch_size * dp_size)
    consumed = start_iter * s.global_batch_size
    iterators = [MicrobatchIterator(datasets.train, s.micro_batch_size, dp_rank, dp_size, consumed)
                 for _ in model]

    logger = MetricsLogger(run_dir, s.train_iters, start_iter, enabled=is_logger,
                           tensorboard=cfg.logging.tensorboard, progress_bar=cfg.logging.progress_bar)
    if is_logger and start_iter == 0:
        effective = effective_hyperparameters(optimizer, scheduler)
        effective["layout"] = {"world_size": env.world_size, "data_parallel": dp_size,
                               "num_microbatches": num_microbatches, "backend": env.backend}
        (run_dir / "effective_hyperparameters.json").write_text(json.dumps(effective, indent=2))
        logger.write("effective optimizer/schedule: " + json.dumps(effective["schedule"]))

    meta = {"config": config_to_dict(cfg), "world_size": env.world_size}
    losses: list[float] = []
    saved: Path | None = latest
    valid_loss = None
    t0 = time.perf_counter()
    for iteration in range(start_iter, s.train_iters):
        lr = optimizer.param_groups[0]["lr"]
        step_start = time.perf_counter()
        metrics = train_step(model, optimizer, scheduler, iterators, num_microbatches,
                             cfg.data.seq_length, s.micro_batch_size)
        elapsed = time.perf_counter() - step_start
        losses.append(metrics["loss"])
        logger.log({"iteration": iteration + 1, "loss": metrics["loss"], "lr": lr,
                    "grad_norm": metrics["grad_norm"], "tokens": metrics["tokens"],
                    "step_time_s": elapsed,
                    "tokens_per_s_per_rank": metrics["tokens"] / elapsed / env.world_size})
        done = iteration + 1
        if cfg.checkpoint.save_interval and done % cfg.checkpoint.save_interval == 0:
            saved = ckpt.save_checkpoint(ckpt_root, done, model, optimizer, scheduler,
                                         {"consumed_samples": done * s.global_batch_size}, meta,
                                         cfg.checkpoint.keep_last)
        if cfg.eval_interval and done % cfg.eval_interval == 0 and datasets.valid is not None:
            valid_loss = _validate_loss(model, datasets, cfg, dp_rank, dp_size, num_microbatches,
                                        (done // cfg.eval_interval - 1) * cfg.eval_iters * s.global_batch_size)
            logger.log({"iteration": done, "valid_loss": valid_loss})

    if start_iter < s.train_iters and (saved is None or saved.name != ckpt.iteration_dir(ckpt_root, s.train_iters).name):
        saved = ckpt.save_checkpoint(ckpt_root, s.train_iters, model, optimizer, scheduler,
                                     {"consumed_samples": s.train_iters * s.global_batch_size}, meta,
                                     cfg.checkpoint.keep_last)
    if not cfg.eval_interval and datasets.valid is not None and len(datasets.valid):
        valid_loss = _validate_loss(model, datasets, cfg, dp_rank, dp_size, num_microbatches, 0)
        logger.log({"iteration": s.train_iters, "valid_loss": valid_loss})
    logger.write(f"trained {s.train_iters - start_iter} steps in {time.perf_counter() - t0:.1f}s; "
                 f"checkpoint: {saved}")
    logger.close()
    dist.barrier()
    return TrainResult(str(run_dir), losses, str(saved) if saved else None, start_iter, valid_loss)
