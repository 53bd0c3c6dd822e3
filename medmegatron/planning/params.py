"""Parameter counts per tensor family and per rank, following megatron-core's sharding.

Kept separate from byte accounting so the counts can be checked directly against the shapes of a
megatron-core `GPTModel` (tests/planning/test_megatron_allocation.py).

Sharding rules (megatron-core, local and TE specs alike):
  - QKV (+bias) and fc1 are column-parallel, out-proj and fc2 row-parallel: split over TP;
  - RMSNorm weights and the MoE router are replicated on every TP rank;
  - word embedding and output layer are split over TP along the padded vocabulary;
  - experts are split over EP (whole experts) and expert-TP (inside each expert).
"""

from __future__ import annotations

from dataclasses import dataclass

from medmegatron.config.model import ModelConfig


@dataclass(frozen=True)
class LayerParams:
    """Parameters of one transformer layer, unsharded, grouped by how they are split."""

    attention: int  # QKV weight (+bias) + out-proj: TP-split
    dense_mlp: int  # SwiGLU fc1 (2F x h) + fc2 (h x F): TP-split; 0 for MoE layers
    experts: int  # all experts' weights: EP- and expert-TP-split; 0 for dense layers
    replicated: int  # two RMSNorm weights (+ router for MoE): on every TP rank


def layer_params(m: ModelConfig) -> LayerParams:
    h, d = m.hidden_size, m.head_dim
    q, kv = m.num_attention_heads * d, m.query_groups * d
    attention = h * (q + 2 * kv) + q * h + ((q + 2 * kv) if m.add_qkv_bias else 0)
    norms = 2 * h
    if m.num_moe_experts:
        f = m.moe_ffn_hidden_size or m.ffn_hidden_size
        experts = m.num_moe_experts * 3 * h * f
        return LayerParams(attention, 0, experts, norms + m.num_moe_experts * h)
    return LayerParams(attention, 3 * h * m.ffn_hidden_size, 0, norms)


def total_params(m: ModelConfig) -> int:
    """Unsharded parameter count (unpadded vocabulary), as quoted on model cards."""
    lp = layer_params(m)
    per_layer = lp.attention + lp.dense_mlp + lp.experts + lp.replicated
    vocab = m.vocab_size * m.hidden_size * (2 if m.untie_embeddings_and_output_weights else 1)
    return m.num_layers * per_layer + vocab + m.hidden_size


def active_params(m: ModelConfig) -> int:
    """Parameters touched per token (top-k experts only): what FLOPs scale with."""
    lp = layer_params(m)
    experts = lp.experts * m.moe_router_topk // m.num_moe_experts if m.num_moe_experts else 0
    per_layer = lp.attention + lp.dense_mlp + experts + lp.replicated
    vocab = m.vocab_size * m.hidden_size * (2 if m.untie_embeddings_and_output_weights else 1)
    return m.num_layers * per_layer + vocab + m.hidden_size


@dataclass(frozen=True)
class RankParams:
    """Parameters held by one rank of a pipeline stage."""

    dense: int  # everything but experts: gradients/optimizer sharded over DP x CP
    experts: int  # sharded over the expert-data-parallel group
    transformer_linear: int  # weights of the layers' linear layers (what FP8 caches)

    @property
    def total(self) -> int:
        return self.dense + self.experts


def rank_params(m: ModelConfig, tp: int, pp: int, ep: int, etp: int, stage: str) -> RankParams:
    """Parameters on one rank of the `stage` ('first' | 'last' | 'middle') pipeline stage."""
    lp = layer_params(m)
    layers = m.num_layers // pp
    dense_layer = (lp.attention + lp.dense_mlp) // tp + lp.replicated
    experts_layer = lp.experts // (ep * etp)
    vocab_shard = m.padded_vocab_size(tp) // tp * m.hidden_size
    dense = layers * dense_layer
    first, last = stage == "first" or pp == 1, stage == "last" or pp == 1
    if first:
        dense += vocab_shard
    if last:
        dense += m.hidden_size  # final norm
        if m.untie_embeddings_and_output_weights or pp > 1:
            dense += vocab_shard  # untied output layer, or the tied copy on the last stage
    linear = layers * ((lp.attention + lp.dense_mlp) // tp + experts_layer)
    return RankParams(dense, layers * experts_layer, linear)
