"""Up-front validation: every layout/data problem found before megatron-core is touched.

megatron-core reports these as asserts deep inside model construction (or not at all); here each
becomes one sentence naming the field, the value, and values that would work. All problems are
collected and reported together so a user fixes a config in one round trip.
"""

from __future__ import annotations

from pathlib import Path

from medmegatron.config.train import TrainConfig
from medmegatron.errors import ConfigError

DTYPES = ("auto", "fp32", "bf16", "fp16")
FP8_RECIPES = ("delayed", "tensorwise", "blockwise", "mxfp8")
DECAY_STYLES = ("constant", "linear", "cosine")


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def _check_layout(cfg: TrainConfig, world_size: int, problems: list[str]) -> None:
    m, p = cfg.model, cfg.parallel
    tp, pp, cp, ep = p.tensor_parallel, p.pipeline_parallel, p.context_parallel, p.expert_parallel
    for name in ("tensor_parallel", "pipeline_parallel", "context_parallel", "expert_parallel"):
        if getattr(p, name) < 1:
            problems.append(f"parallel.{name}={getattr(p, name)} must be >= 1")
    if min(tp, pp, cp, ep) < 1:
        return
    if m.num_attention_heads % tp:
        problems.append(
            f"model.num_attention_heads={m.num_attention_heads} is not divisible by "
            f"parallel.tensor_parallel={tp}: each TP rank needs whole heads; use a TP in "
            f"{{{_divisors(m.num_attention_heads)}}}"
        )
    if m.query_groups % tp:
        problems.append(
            f"model.num_query_groups={m.query_groups} (KV heads) is not divisible by "
            f"parallel.tensor_parallel={tp}: use a TP in {{{_divisors(m.query_groups)}}}"
        )
    if m.num_attention_heads % m.query_groups:
        problems.append(
            f"model.num_attention_heads={m.num_attention_heads} must be a multiple of "
            f"model.num_query_groups={m.query_groups}"
        )
    vp = p.virtual_pipeline_parallel or 1
    if p.virtual_pipeline_parallel is not None and pp < 2:
        problems.append("parallel.virtual_pipeline_parallel needs parallel.pipeline_parallel >= 2")
    if m.num_layers % (pp * vp):
        problems.append(
            f"model.num_layers={m.num_layers} is not divisible by pipeline_parallel x "
            f"virtual_pipeline_parallel = {pp} x {vp}: every stage needs the same number of layers"
        )
    if world_size % (tp * pp * cp):
        problems.append(
            f"the world size {world_size} (GPUs/processes) is not divisible by tensor_parallel x "
            f"pipeline_parallel x context_parallel = {tp} x {pp} x {cp}: change the layout or the "
            "number of processes"
        )
        return
    dp = world_size // (tp * pp * cp)
    if m.num_moe_experts:
        if m.num_moe_experts % ep:
            problems.append(
                f"model.num_moe_experts={m.num_moe_experts} is not divisible by "
                f"parallel.expert_parallel={ep}: use an EP in {{{_divisors(m.num_moe_experts)}}}"
            )
        etp = p.expert_tensor_parallel or tp
        if (world_size // pp) % (etp * ep):
            problems.append(
                f"expert_parallel x expert_tensor_parallel = {ep} x {etp} must divide the "
                f"{world_size // pp} ranks of one pipeline stage"
            )
        if m.moe_router_topk > m.num_moe_experts:
            problems.append(f"model.moe_router_topk={m.moe_router_topk} exceeds num_moe_experts")
        if p.moe_token_dispatcher not in ("alltoall", "allgather"):
            problems.append("parallel.moe_token_dispatcher must be 'alltoall' or 'allgather'")
    elif ep > 1:
        problems.append(f"parallel.expert_parallel={ep} needs an MoE model (model.num_moe_experts)")
    s = cfg.schedule
    if s.global_batch_size % (s.micro_batch_size * dp):
        problems.append(
            f"schedule.global_batch_size={s.global_batch_size} is not divisible by "
            f"micro_batch_size x data_parallel = {s.micro_batch_size} x {dp}: use a multiple of "
            f"{s.micro_batch_size * dp}"
        )
    if cp > 1 and cfg.data.seq_length % (2 * cp):
        problems.append(
            f"data.seq_length={cfg.data.seq_length} must be divisible by 2 x context_parallel = {2 * cp}"
        )
    if p.recompute_granularity not in (None, "selective", "full"):
        problems.append(f"parallel.recompute_granularity='{p.recompute_granularity}' must be null, 'selective' or 'full'")
    if p.recompute_num_layers is not None and p.recompute_granularity != "full":
        problems.append("parallel.recompute_num_layers needs parallel.recompute_granularity=full")
    if cfg.data.kind not in ("pretrain", "sft"):
        problems.append(f"data.kind='{cfg.data.kind}' must be 'pretrain' or 'sft'")
    lora = cfg.lora
    if lora.rank:
        from medmegatron.config.lora import LORA_TARGETS

        unknown = sorted(set(lora.targets) - set(LORA_TARGETS))
        if unknown or not lora.targets:
            problems.append(f"lora.targets {unknown or '[]'} invalid: choose from {list(LORA_TARGETS)}")
        if lora.rank < 0 or lora.rank % tp:
            problems.append(f"lora.rank={lora.rank} must be a positive multiple of tensor_parallel={tp} "
                            "(the adapters are split across TP ranks)")
        if p.sequence_parallel:
            problems.append("LoRA with parallel.sequence_parallel is not supported yet: set "
                            "parallel.sequence_parallel=false")
        if m.num_moe_experts:
            problems.append("LoRA on MoE models is not supported yet (expert projections)")
        if not cfg.checkpoint.init_from:
            problems.append("LoRA trains adapters on frozen weights: set checkpoint.init_from to the "
                            "base checkpoint (e.g. from `medmegatron convert import`)")
    if p.sequence_parallel and tp == 1:
        problems.append("parallel.sequence_parallel needs parallel.tensor_parallel > 1")
    if p.sequence_parallel and cfg.data.seq_length % tp:
        problems.append(f"data.seq_length must be divisible by tensor_parallel={tp} with sequence_parallel")


def _check_numbers(cfg: TrainConfig, cuda_available: bool, problems: list[str]) -> None:
    if cfg.precision.dtype not in DTYPES:
        problems.append(f"precision.dtype='{cfg.precision.dtype}' must be one of {DTYPES}")
    if cfg.precision.fp8 is not None:
        if cfg.precision.fp8 not in FP8_RECIPES:
            problems.append(f"precision.fp8='{cfg.precision.fp8}' must be one of {FP8_RECIPES} or null")
        elif not cuda_available:
            problems.append(
                "precision.fp8 needs Transformer Engine on Hopper/Blackwell GPUs; this machine has no "
                "CUDA device. Set precision.fp8=null for CPU runs"
            )
        elif cfg.precision.resolved_dtype(cuda_available) != "bf16":
            problems.append("precision.fp8 needs precision.dtype=bf16 for the non-FP8 parts")
    if cfg.schedule.lr_decay_style not in DECAY_STYLES:
        problems.append(f"schedule.lr_decay_style must be one of {DECAY_STYLES}")
    if cfg.schedule.train_iters < 1:
        problems.append("schedule.train_iters must be >= 1")
    decay_iters, warmup = cfg.schedule.decay_iters(), cfg.schedule.warmup_iters()
    if warmup and warmup >= decay_iters:
        problems.append(
            f"schedule.lr_warmup_iters={warmup} must be smaller than the decay "
            f"length ({decay_iters} = lr_decay_iters or train_iters): shorten the warmup"
        )
    if cfg.schedule.lr_warmup_fraction is not None and not 0 <= cfg.schedule.lr_warmup_fraction < 1:
        problems.append("schedule.lr_warmup_fraction must be within [0, 1)")
    if not 0.0 <= cfg.schedule.lr_warmup_init_fraction <= 1.0:
        problems.append("schedule.lr_warmup_init_fraction must be within [0, 1]")
    if cfg.parallel.context_parallel > 1 and not cuda_available:
        problems.append(
            "parallel.context_parallel > 1 needs Transformer Engine's attention (megatron-core's "
            "local attention has no context parallelism), which needs CUDA: use "
            "parallel.context_parallel=1 on this machine"
        )
    if cfg.monitor.nan_policy not in ("skip", "abort"):
        problems.append(f"monitor.nan_policy='{cfg.monitor.nan_policy}' must be 'skip' or 'abort'")
    if cfg.optimizer.min_lr > cfg.optimizer.lr:
        problems.append(f"optimizer.min_lr={cfg.optimizer.min_lr} exceeds optimizer.lr={cfg.optimizer.lr}")
    if cfg.data.seq_length > cfg.model.max_position_embeddings:
        problems.append(
            f"data.seq_length={cfg.data.seq_length} exceeds model.max_position_embeddings="
            f"{cfg.model.max_position_embeddings}"
        )


def _check_paths(cfg: TrainConfig, problems: list[str]) -> None:
    if not cfg.data.paths:
        problems.append(
            "data.paths is empty: give the prefixes of Megatron indexed datasets (files "
            "PREFIX.bin and PREFIX.idx), e.g. written by `medmegatron prep tokenize`"
        )
    for prefix in cfg.data.paths:
        missing = [ext for ext in (".bin", ".idx") if not Path(prefix + ext).exists()]
        if missing:
            problems.append(
                f"data.paths entry '{prefix}': {' and '.join(prefix + e for e in missing)} not found; "
                "give the dataset prefix without extension, as written by `medmegatron prep tokenize`"
            )
    if cfg.data.weights is not None and len(cfg.data.weights) != len(cfg.data.paths):
        problems.append(
            f"data.weights has {len(cfg.data.weights)} entries but data.paths has {len(cfg.data.paths)}"
        )
    if cfg.data.names is not None and len(cfg.data.names) != len(cfg.data.paths):
        problems.append(f"data.names has {len(cfg.data.names)} entries but data.paths has {len(cfg.data.paths)}")
    general = cfg.monitor.general_source
    if general is not None and general not in cfg.data.source_names():
        problems.append(
            f"monitor.general_source='{general}' is not one of the data sources "
            f"{cfg.data.source_names()} (set data.names)"
        )
    if cfg.data.tokenizer is not None and not Path(cfg.data.tokenizer).exists():
        problems.append(
            f"data.tokenizer '{cfg.data.tokenizer}' does not exist: give a SentencePiece .model file "
            "or a Hugging Face tokenizer folder (or null for the bundled Llama-2 tokenizer)"
        )
    init = cfg.checkpoint.init_from
    if init is not None and not Path(init).exists():
        problems.append(
            f"checkpoint.init_from '{init}' does not exist: give a checkpoint directory written by "
            "`medmegatron convert import` or by a previous run (its iter_XXXXXXX folder or run dir)"
        )


def validate(cfg: TrainConfig, world_size: int, cuda_available: bool, check_paths: bool = True) -> None:
    """Raise one `ConfigError` listing every problem, or return if the config can run."""
    problems: list[str] = []
    _check_layout(cfg, world_size, problems)
    _check_numbers(cfg, cuda_available, problems)
    if check_paths:
        _check_paths(cfg, problems)
    if problems:
        raise ConfigError("the config cannot run:\n  - " + "\n  - ".join(problems))
