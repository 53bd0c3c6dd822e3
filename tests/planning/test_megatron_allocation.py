"""The planner's per-rank parameter, weight, gradient and optimizer bytes vs what megatron-core
actually allocates for tiny models (one CPU process, gloo world of 1).

Weights: the GPTModel's parameters. Gradients: megatron DDP's fp32 grad buffers. Optimizer: the
fp32 master copies and Adam moments that `get_megatron_optimizer` holds after one step (Adam
state is allocated lazily). TP=2 / EP=2 are checked analytically: megatron marks each tensor it
splits (`tensor_model_parallel`, `partition_dim`), so a TP rank holds numel/TP of those.
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.nn.functional as F

from medmegatron.config import (
    DataConfig, ParallelConfig, PrecisionConfig, ScheduleConfig, TrainConfig, get_preset,
)
from medmegatron.planning.layout import resolve_layout
from medmegatron.planning.memory import rank_memory
from medmegatron.planning.params import rank_params

TOLERANCE = 0.05


@pytest.fixture(scope="module")
def megatron_world():
    try:
        from medmegatron.runtime import cpu_mode
    except ImportError:
        cpu_mode = None
    if cpu_mode is not None:
        cpu_mode.activate()
    import torch.distributed as dist
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed

    started = not dist.is_initialized()
    if started:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    if dist.get_world_size() != 1:
        pytest.skip("needs a world of one process")
    ours = not parallel_state.model_parallel_is_initialized()
    if ours:
        parallel_state.initialize_model_parallel()
    model_parallel_cuda_manual_seed(1234)
    yield
    if ours:  # leave state that other tests set up alone
        parallel_state.destroy_model_parallel()
    if started:
        dist.destroy_process_group()


def _gpt(preset: str, dtype: torch.dtype):
    from megatron.core.models.gpt import GPTModel
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.transformer import TransformerConfig

    m = get_preset(preset)
    bf16 = dtype == torch.bfloat16
    moe = dict(num_moe_experts=m.num_moe_experts, moe_ffn_hidden_size=m.moe_ffn_hidden_size,
               moe_router_topk=m.moe_router_topk, moe_grouped_gemm=False) if m.num_moe_experts else {}
    tcfg = TransformerConfig(
        num_layers=m.num_layers, hidden_size=m.hidden_size, ffn_hidden_size=m.ffn_hidden_size,
        num_attention_heads=m.num_attention_heads, num_query_groups=m.query_groups,
        normalization="RMSNorm", gated_linear_unit=True, activation_func=F.silu,
        add_bias_linear=False, add_qkv_bias=m.add_qkv_bias, use_cpu_initialization=True,
        params_dtype=dtype, pipeline_dtype=dtype, bf16=bf16, bias_activation_fusion=False,
        masked_softmax_fusion=False, apply_rope_fusion=False, persist_layer_norm=False,
        gradient_accumulation_fusion=False, **moe,
    )
    spec = get_gpt_layer_local_spec(num_experts=m.num_moe_experts, moe_grouped_gemm=False,
                                    normalization="RMSNorm")
    model = GPTModel(tcfg, spec, vocab_size=m.padded_vocab_size(1),
                     max_sequence_length=m.max_position_embeddings, position_embedding_type="rope")
    return model, tcfg


def _build(preset: str, dtype: torch.dtype):
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer

    model, tcfg = _gpt(preset, dtype)
    bf16 = dtype == torch.bfloat16
    ddp = DistributedDataParallel(
        tcfg, DistributedDataParallelConfig(grad_reduce_in_fp32=True, use_distributed_optimizer=True), model,
    )
    opt = get_megatron_optimizer(
        OptimizerConfig(optimizer="adam", lr=1e-4, bf16=bf16, use_distributed_optimizer=True), [ddp],
    )
    opt.step()  # Adam allocates its moments on the first step
    return model, ddp, opt


def _optimizer_bytes(opt) -> int:
    total = 0
    for inner in getattr(opt, "chained_optimizers", [opt]):
        for group in inner.optimizer.param_groups:
            for p in group["params"]:
                # Mixed precision: these are the fp32 master shards; fp32 training: the params
                # themselves (counted as weights, not optimizer state).
                if getattr(inner, "config", None) is not None and inner.config.bf16:
                    total += p.numel() * p.element_size()
                state = inner.optimizer.state.get(p, {})
                total += sum(v.numel() * v.element_size() for v in state.values()
                             if torch.is_tensor(v) and v.dim() > 0)
    return total


def _planner(preset: str, dtype: str, tp: int = 1, ep: int = 1):
    cfg = TrainConfig(
        model=get_preset(preset), precision=PrecisionConfig(dtype=dtype),
        parallel=ParallelConfig(tensor_parallel=1, use_distributed_optimizer=True),
        schedule=ScheduleConfig(micro_batch_size=1, global_batch_size=1), data=DataConfig(seq_length=128),
    )
    return rank_memory(cfg, resolve_layout(cfg, 1), "first"), cfg.model


def _close(actual: float, predicted: float) -> bool:
    return abs(predicted - actual) <= TOLERANCE * actual


@pytest.mark.parametrize("preset,dtype", [("tiny-llama", "bf16"), ("tiny-mixtral", "bf16"), ("tiny-qwen", "fp32")])
def test_weights_gradients_optimizer_match_megatron(megatron_world, preset, dtype):
    model, ddp, opt = _build(preset, torch.bfloat16 if dtype == "bf16" else torch.float32)
    mem, m = _planner(preset, dtype)

    params = sum(p.numel() for p in model.parameters())
    assert rank_params(m, 1, 1, 1, 1, "first").total == params  # counts are exact

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    assert _close(weights, mem.weights), (weights, mem.weights)

    grads = sum(b.grad_data.numel() * b.grad_data.element_size()
                for b in ddp.buffers + ddp.expert_parallel_buffers)
    assert _close(grads, mem.gradients), (grads, mem.gradients)

    optimizer = _optimizer_bytes(opt)
    assert _close(optimizer, mem.optimizer), (optimizer, mem.optimizer)


@pytest.mark.parametrize("preset,tp,ep", [("tiny-llama", 2, 1), ("tiny-qwen", 2, 1), ("tiny-mixtral", 2, 1),
                                          ("tiny-mixtral", 1, 2), ("tiny-mixtral", 1, 4)])
def test_sharded_parameter_counts_follow_megatron_split_markers(megatron_world, preset, tp, ep):
    model, _ = _gpt(preset, torch.float32)  # shapes only: no DDP/optimizer needed
    m = get_preset(preset)
    per_rank = 0
    for name, p in model.named_parameters():
        n = p.numel()
        if getattr(p, "tensor_model_parallel", False):
            n //= tp  # expert-TP defaults to TP in megatron-core
        if ".local_experts." in name:
            n //= ep
        per_rank += n
    assert rank_params(m, tp, 1, ep, tp, "first").total == per_rank
