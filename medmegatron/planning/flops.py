"""Model FLOPs per token (Narayanan et al. 2021, generalised to GQA, SwiGLU and MoE).

Forward FLOPs per token = 2 x (weights it multiplies) + attention scores and values
(2 x 2 x s x heads x head_dim, counted for the full s x s matrix as Megatron and NeMo report);
backward = 2 x forward. For MHA with an 8h^2 MLP this reduces to the paper's per-batch
72·B·s·L·h²(1 + s/6h + V/12hL), and with full recompute (one more forward of every layer) to
its 96·B·s·L·h²(1 + s/6h + V/16hL) (tests/planning/test_flops_memory.py).
"""

from __future__ import annotations

from medmegatron.config.model import ModelConfig
from medmegatron.planning.params import layer_params


def forward_flops_per_token_per_layer(m: ModelConfig, seq_length: int) -> float:
    lp = layer_params(m)
    q_width = m.num_attention_heads * m.head_dim
    weights = lp.attention + lp.dense_mlp
    if m.num_moe_experts:
        weights += lp.experts * m.moe_router_topk / m.num_moe_experts  # top-k experts per token
        weights += m.num_moe_experts * m.hidden_size  # router
    return 2 * weights + 4 * seq_length * q_width


def model_flops_per_token(m: ModelConfig, seq_length: int) -> float:
    """Useful FLOPs (forward + backward) per token, the numerator of MFU."""
    layers = m.num_layers * forward_flops_per_token_per_layer(m, seq_length)
    logits = 2 * m.hidden_size * m.vocab_size
    return 3 * (layers + logits)


def recompute_flops_per_token(m: ModelConfig, seq_length: int, recomputed_fraction: float) -> float:
    """Extra forward FLOPs spent re-running `recomputed_fraction` of the layers (full recompute)."""
    return recomputed_fraction * m.num_layers * forward_flops_per_token_per_layer(m, seq_length)
