"""`pretrain(config)`: the training loop, readable top to bottom.

Called once per rank (under torchrun, or alone for a world of one). Everything parallel is
megatron-core's: process groups, GPTModel, DDP + distributed optimizer, pipeline schedules,
dist checkpoints. This file orders the calls, watches the run and records what happened.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
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
from medmegatron.training.monitors import ForgettingMonitor, PreemptionSignal, SpikeDetector
from medmegatron.training.optim import (build_optimizer, build_scheduler,
                                        effective_hyperparameters, wrap_ddp)
from medmegatron.training.provenance import code_version, data_fingerprints
from medmegatron.training.step import TrainingDiverged, eval_losses, make_forward_step, train_step
from medmegatron.training.throughput import Throughput


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    losses: list[float]
    checkpoint: str | None
    start_iteration: int
    valid_loss: float | None
    preempted: bool = False


def _check_tokenizer(cfg: TrainConfig, tokenizer) -> None:
    if tokenizer.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            f"the tokenizer has {tokenizer.vocab_size} ids but model.vocab_size="
            f"{cfg.model.vocab_size}: token ids would index past the embedding. Use the model's "
            "own tokenizer (data.tokenizer) or a preset with a matching vocabulary"
        )


def _refuse_unimplemented(cfg: TrainConfig) -> None:
    """Settings recipes may carry that this trainer does not honour yet: refuse, never ignore."""
    if cfg.neftune_noise_alpha is not None and cfg.data.kind != "sft":
        raise ConfigError("neftune_noise_alpha is for instruction tuning: set data.kind=sft, or "
                          "neftune_noise_alpha=null")


def _check_optional_services(cfg: TrainConfig) -> None:
    """On every rank, before any collective, so a missing package cannot strand the others."""
    import importlib.util

    if cfg.logging.wandb_project and importlib.util.find_spec("wandb") is None:
        raise ConfigError("logging.wandb_project is set but wandb is not installed: "
                          "`pip install wandb`, or set logging.wandb_project=null")


def _by_source(names: list[str], sums: torch.Tensor, prefix: str) -> dict[str, float]:
    return {f"{prefix}{name}": s / t for name, (s, t) in zip(names, sums.tolist()) if t > 0}


def _all_ranks_agree(flag: bool) -> bool:
    """True on every rank if any rank saw `flag` (e.g. SIGTERM delivered to one process)."""
    value = torch.tensor([1.0 if flag else 0.0],
                         device=torch.cuda.current_device() if torch.cuda.is_available() else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def pretrain(cfg: TrainConfig) -> TrainResult:
    env = init_process_group()
    validate(cfg, env.world_size, cuda_available=not env.cpu)
    _refuse_unimplemented(cfg)
    _check_optional_services(cfg)
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
    if cfg.lora.rank:  # frozen base first (plain keys), then the adapters on top
        from medmegatron.models import lora

        ckpt.init_weights_from(cfg.checkpoint.init_from, chunks, cfg.model)
        lora.attach(chunks, cfg.lora.rank, cfg.lora.alpha, cfg.lora.targets)
    dtype = cfg.precision.resolved_dtype(not env.cpu)
    model = wrap_ddp(cfg, chunks, chunks[0].config)
    optimizer = build_optimizer(cfg, model, dtype)
    scheduler = build_scheduler(cfg, optimizer)

    neftune = None
    if cfg.neftune_noise_alpha:
        from medmegatron.training.neftune import NEFTune

        neftune = NEFTune(cfg.neftune_noise_alpha, cfg.seed)
        neftune.attach(model)

    start_iter, rng_note, extras = 0, None, {}
    latest = ckpt.latest_checkpoint(ckpt_root) if cfg.checkpoint.resume else None
    if latest is not None:
        extras = ckpt.load_checkpoint(latest, model, optimizer, scheduler)
        start_iter = int(extras["iteration"])
        rng_note = None if extras["rng_restored"] else "RNG streams not restored: world size changed"
        if torch.distributed.get_rank() == 0:
            print(f"resumed from {latest} at iteration {start_iter}", flush=True)
    elif cfg.checkpoint.init_from and not cfg.lora.rank:
        ckpt.init_weights_from(cfg.checkpoint.init_from, model, cfg.model)
        optimizer.reload_model_params()  # refresh fp32 master copies from the loaded weights

    datasets = build_datasets(cfg, tokenizer, cfg.data.cache_dir or str(run_dir / "data_cache"))
    names = cfg.data.source_names()
    forward_step = make_forward_step(len(names))
    dp_rank = parallel_state.get_data_parallel_rank()
    dp_size = parallel_state.get_data_parallel_world_size()
    s = cfg.schedule
    num_microbatches = s.global_batch_size // (s.micro_batch_size * dp_size)
    train_iterators = [MicrobatchIterator(datasets.train, s.micro_batch_size, dp_rank, dp_size,
                                          start_iter * s.global_batch_size) for _ in model]
    has_valid = datasets.valid is not None and len(datasets.valid) > 0

    def validate_now(iteration: int) -> dict[str, float]:
        # Always the same validation batches, so values are comparable across steps.
        iterators = [MicrobatchIterator(datasets.valid, s.micro_batch_size, dp_rank, dp_size, 0)
                     for _ in model]
        sums = eval_losses(model, iterators, forward_step, len(names), num_microbatches,
                           cfg.data.seq_length, s.micro_batch_size, cfg.eval_iters)
        total_sum, total_tokens = sums.sum(dim=0).tolist()
        return {"valid_loss": total_sum / max(total_tokens, 1), **_by_source(names, sums, "valid_loss/")}

    logger = MetricsLogger(run_dir, s.train_iters, start_iter, enabled=is_logger,
                           tensorboard=cfg.logging.tensorboard, progress_bar=cfg.logging.progress_bar,
                           log_interval=cfg.logging.log_interval,
                           wandb_project=cfg.logging.wandb_project, config=config_to_dict(cfg))
    if rng_note:
        logger.write(rng_note)
    if is_logger and start_iter == 0:
        effective = effective_hyperparameters(optimizer, scheduler)
        effective["layout"] = {"world_size": env.world_size, "data_parallel": dp_size,
                               "num_microbatches": num_microbatches, "backend": env.backend,
                               "dtype": dtype}
        (run_dir / "effective_hyperparameters.json").write_text(json.dumps(effective, indent=2))
        logger.write("effective optimizer/schedule: " + json.dumps(effective["schedule"]))

    general = cfg.monitor.general_source or ("general" if "general" in names else None)
    baseline = extras.get("forgetting_baseline")
    forgetting = ForgettingMonitor(general, cfg.monitor.forgetting_threshold,
                                   baseline if baseline is not None and baseline >= 0 else None)
    spikes = SpikeDetector(cfg.monitor.spike_threshold)
    preemption = PreemptionSignal()
    preemption.install()
    throughput = Throughput(cfg, env.world_size)
    meta = {"config": config_to_dict(cfg), "code": code_version(),
            "data": data_fingerprints(cfg.data.paths)}

    def log_event(event: dict | None) -> None:
        if event:
            logger.log(event)
            logger.write(f"warning: {event['event']} at step {event['iteration']}: "
                         + json.dumps({k: v for k, v in event.items() if k not in ('event', 'iteration')}))

    def save(iteration: int) -> Path:
        return ckpt.save_checkpoint(ckpt_root, iteration, model, optimizer, scheduler,
                                    {"consumed_samples": iteration * s.global_batch_size,
                                     "forgetting_baseline": forgetting.baseline if forgetting.baseline is not None else -1.0},
                                    meta,
                                    cfg.checkpoint.keep_last)

    def evaluate(iteration: int) -> float | None:
        if not has_valid:
            return None
        values = validate_now(iteration)
        logger.log({"iteration": iteration, **values})
        log_event(forgetting.check(iteration, {k.split("/", 1)[1]: v for k, v in values.items() if "/" in k}))
        return values["valid_loss"]

    losses: list[float] = []
    saved: Path | None = latest
    valid_loss = None
    skipped = 0
    preempted = False
    if start_iter == 0 and (general or cfg.eval_interval):
        valid_loss = evaluate(0)  # the step-0 baseline the forgetting monitor compares against
    t0 = time.perf_counter()
    try:
        for iteration in range(start_iter, s.train_iters):
            done = iteration + 1
            lr = optimizer.param_groups[0]["lr"]
            step_start = time.perf_counter()
            if neftune is not None:
                neftune.start_step(iteration)
            step = train_step(model, optimizer, scheduler, train_iterators, forward_step, len(names),
                              num_microbatches, cfg.data.seq_length, s.micro_batch_size,
                              cfg.monitor.nan_policy, done)
            elapsed = time.perf_counter() - step_start
            losses.append(step.loss)
            # `tokens` is what the loss covered (SFT: answer tokens only); speed and MFU count every
            # token the model processed, as the planner and published figures do
            record = {"iteration": done, "loss": step.loss, "lr": lr, "grad_norm": step.grad_norm,
                      "tokens": step.tokens, "step_time_s": elapsed, "wall_time": time.time(),
                      **_by_source(names, step.by_source, "loss/"),
                      **throughput.record(s.global_batch_size * cfg.data.seq_length, elapsed)}
            if not step.updated:
                skipped += 1
                record["skipped"] = True
            logger.log(record)
            if not step.updated:
                log_event({"iteration": done, "event": "skipped_step", "loss": step.loss,
                           "grad_norm": step.grad_norm, "skipped_so_far": skipped})
                if skipped > cfg.monitor.max_skipped_steps:
                    raise TrainingDiverged(
                        f"{skipped} steps skipped for non-finite loss/gradients (last at step {done}), "
                        f"more than monitor.max_skipped_steps={cfg.monitor.max_skipped_steps}; resume "
                        "from the last checkpoint with a lower optimizer.lr"
                    )
            log_event(spikes.check(done, step.loss))
            if cfg.checkpoint.save_interval and done % cfg.checkpoint.save_interval == 0:
                saved = save(done)
            if cfg.eval_interval and done % cfg.eval_interval == 0:
                valid_loss = evaluate(done)
            if cfg.monitor.checkpoint_on_sigterm and _all_ranks_agree(preemption.received):
                if saved is None or saved.name != ckpt.iteration_dir(ckpt_root, done).name:
                    saved = save(done)
                logger.write(f"SIGTERM received: checkpoint {saved} written at step {done}; exiting")
                preempted = True
                break
    except BaseException:
        logger.close()
        raise
    finally:
        preemption.uninstall()

    if not preempted:
        final = ckpt.iteration_dir(ckpt_root, s.train_iters).name
        if start_iter < s.train_iters and (saved is None or saved.name != final):
            saved = save(s.train_iters)
        if not cfg.eval_interval or s.train_iters % cfg.eval_interval:
            valid_loss = evaluate(s.train_iters) if start_iter < s.train_iters else valid_loss
    if cfg.lora.rank and cfg.lora.merge_at_end and not preempted:
        from medmegatron.models import lora

        merged_cfg = config_to_dict(cfg)
        merged_cfg["lora"]["rank"] = 0
        plain = [c.module if hasattr(c, "module") else c for c in model]
        lora.merge_into_base(plain, cfg.lora.targets)
        merged = ckpt.save_weights(run_dir / "merged", plain, {"config": merged_cfg, "code": meta["code"]})
        logger.write(f"LoRA merged into the base weights: {merged}")
    logger.write(f"trained {len(losses)} steps in {time.perf_counter() - t0:.1f}s; checkpoint: {saved}")
    logger.close()
    if is_logger and cfg.logging.plots and losses:
        from medmegatron.training.plots import plot_run

        print(f"plot: {plot_run(run_dir)}", file=sys.stderr)
    dist.barrier()
    return TrainResult(str(run_dir), losses, str(saved) if saved else None, start_iter, valid_loss,
                       preempted)
