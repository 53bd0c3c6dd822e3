"""Per-rank GPU memory: weights, gradients, optimizer state, activations and fixed overheads.

Byte rules (megatron-core mixed precision, as the trainer runs it):
  - weights in the training dtype (2 bytes bf16/fp16, 4 fp32); FP8 adds TE's cached FP8 weight
    and its transpose (2 bytes per linear weight);
  - main gradients in fp32 (4 bytes): megatron DDP's grad buffer with fp32 reduction;
  - Adam: fp32 master weights + m + v = 12 bytes (8 when training in fp32: no master copy),
    divided over DP x CP (dense) or the expert-DP group (experts) with the distributed optimizer.

Activations per layer and microbatch follow Korthikanti et al. 2022 ("Reducing activation
recomputation"), re-derived for RMSNorm, GQA, SwiGLU and MoE with fused/flash attention (no
s^2 score matrix is stored). Stage 0 holds the most in-flight microbatches, the last stage the
logits; both are evaluated and the larger one decides whether the layout fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from medmegatron.config.model import ModelConfig
from medmegatron.config.train import TrainConfig
from medmegatron.planning.layout import Layout
from medmegatron.planning.params import rank_params

GIB = 1024**3
FIXED_OVERHEAD_BYTES = 4 * GIB  # CUDA context, NCCL buffers, cuBLAS/TE workspaces
FRAGMENTATION = 0.10  # allocator slack on top of activations (the caching allocator's waste)


@dataclass(frozen=True)
class RankMemory:
    """Bytes on one rank; `total` is what must fit in device memory."""

    stage: str
    params: int
    weights: int
    gradients: int
    optimizer: int
    fp8_cache: int
    activations: int  # with the configured recompute
    activations_no_recompute: int  # same schedule, nothing recomputed
    activations_full_recompute: int  # same schedule, every layer recomputed
    logits: int
    in_flight: int  # microbatch-chunks whose activations stage holds at peak
    overhead: int

    @property
    def total(self) -> int:
        return (self.weights + self.gradients + self.optimizer + self.fp8_cache + self.activations
                + self.logits + self.overhead)


def _dtype_bytes(cfg: TrainConfig) -> int:
    return 4 if cfg.precision.resolved_dtype(cuda_available=True) == "fp32" else 2


def layer_activation_bytes(m: ModelConfig, lay: Layout, dtype_bytes: int, moe_layer: bool) -> int:
    """Bytes saved for backward by one layer for one microbatch on one rank (no recompute)."""
    tokens = lay.micro_batch_size * lay.seq_length // lay.cp
    tp, seq_tp = lay.tp, (lay.tp if lay.sequence_parallel else 1)
    h, d = m.hidden_size, m.head_dim
    q, kv = m.num_attention_heads * d, m.query_groups * d
    # Attention: norm input + QKV input (sequence-split with SP, else replicated), q/k/v and
    # the attention output (head-split), softmax statistics in fp32.
    attn = dtype_bytes * tokens * (2 * h / seq_tp + (2 * q + 2 * kv) / tp)
    attn += 4 * tokens * m.num_attention_heads / tp
    if not moe_layer:
        f = m.ffn_hidden_size
        # Norm input + fc1 input, fc1 output (gate and up: 2F), SwiGLU output (fc2 input).
        mlp = dtype_bytes * tokens * (2 * h / seq_tp + 3 * f / tp)
    else:
        f, k, etp = m.moe_ffn_hidden_size or m.ffn_hidden_size, m.moe_router_topk, lay.etp
        routed = tokens / seq_tp * k * etp  # token copies this rank's experts process
        mlp = dtype_bytes * tokens * 2 * h / seq_tp + 4 * tokens / seq_tp * m.num_moe_experts
        # Permuted input, fc1 output (2F/etp), activation output (F/etp), fc2 output to unpermute.
        mlp += dtype_bytes * routed * (2 * h + 3 * f / etp)
    return int(attn + mlp)


def in_flight_chunks(lay: Layout, stage_rank: int) -> int:
    """Microbatch-chunks held by pipeline rank `stage_rank` at its peak (Megatron's schedules)."""
    p, v, m = lay.pp, lay.vp, lay.num_microbatches
    if p == 1:
        return 1
    if v == 1:  # 1F1B: warm-up of p - rank - 1 forwards, then one more before the first backward
        return min(p - stage_rank, m)
    return min((p - stage_rank - 1) * 2 + (v - 1) * p + 1, m * v)


def rank_memory(cfg: TrainConfig, lay: Layout, stage: str) -> RankMemory:
    m = cfg.model
    dtype_bytes = _dtype_bytes(cfg)
    rp = rank_params(m, lay.tp, lay.pp, lay.ep, lay.etp, stage)
    weights = dtype_bytes * rp.total
    gradients = 4 * rp.total
    opt_bytes = 8 if dtype_bytes == 4 else 12
    if lay.distributed_optimizer:
        optimizer = opt_bytes * (rp.dense / (lay.dp * lay.cp) + rp.experts / lay.expert_dp)
    else:
        optimizer = opt_bytes * rp.total
    fp8_cache = 2 * rp.transformer_linear if cfg.precision.fp8 else 0

    per_layer = layer_activation_bytes(m, lay, dtype_bytes, bool(m.num_moe_experts))
    layers_per_chunk = m.num_layers // (lay.pp * lay.vp)
    chunks = in_flight_chunks(lay, 0 if stage == "first" else lay.pp - 1)
    tokens = lay.micro_batch_size * lay.seq_length // lay.cp
    checkpoint = dtype_bytes * tokens * m.hidden_size // (lay.tp if lay.sequence_parallel else 1)

    def held(recomputed: int) -> int:
        """Recomputed layers keep only their input; one layer is rebuilt at a time in backward."""
        kept = chunks * (recomputed * checkpoint + (layers_per_chunk - recomputed) * per_layer)
        return kept + (per_layer if recomputed else 0)

    no_recompute, full_recompute = held(0), held(layers_per_chunk)
    if lay.recompute == "full":
        activations = held(min(lay.recompute_num_layers or layers_per_chunk, layers_per_chunk))
    else:  # 'selective' recomputes core attention, which fused attention never stores anyway
        activations = no_recompute
    logits = 0
    if stage == "last" or lay.pp == 1:
        logits = (dtype_bytes + 4) * tokens * m.padded_vocab_size(lay.tp) // lay.tp
    overhead = FIXED_OVERHEAD_BYTES + int(FRAGMENTATION * (activations + logits))
    return RankMemory(stage, rp.total, weights, gradients, int(optimizer), fp8_cache,
                      int(activations), int(no_recompute), int(full_recompute), logits, chunks,
                      overhead)


def peak_rank_memory(cfg: TrainConfig, lay: Layout) -> RankMemory:
    """The binding rank: the larger of the first and last pipeline stages."""
    stages = ["first"] if lay.pp == 1 else ["first", "last"]
    return max((rank_memory(cfg, lay, s) for s in stages), key=lambda r: r.total)
