"""Model architecture: the fields that decide tensor shapes, mirrored from HF configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class ModelConfig:
    """A decoder-only transformer in the Llama family (Llama, Mistral, Mixtral, Qwen2).

    Field names follow megatron-core's `TransformerConfig` where one exists, so that building the
    engine's config is a rename-free copy; HF names are given in comments for converters.
    """

    name: str = "custom"
    num_layers: int = 2  # num_hidden_layers
    hidden_size: int = 128
    ffn_hidden_size: int = 352  # intermediate_size
    num_attention_heads: int = 4
    num_query_groups: Optional[int] = None  # num_key_value_heads; None = MHA
    kv_channels: Optional[int] = None  # head_dim; None = hidden_size // heads
    vocab_size: int = 32000
    max_position_embeddings: int = 4096
    norm_epsilon: float = 1e-5  # rms_norm_eps
    rotary_base: float = 10000.0  # rope_theta
    rope_scaling: Optional[dict] = None  # HF rope_scaling dict (e.g. llama3); None = plain RoPE
    add_qkv_bias: bool = False  # Qwen2
    untie_embeddings_and_output_weights: bool = True  # not tie_word_embeddings
    sliding_window: Optional[int] = None  # Mistral v0.1
    # Mixture of experts (Mixtral); None = dense.
    num_moe_experts: Optional[int] = None
    moe_router_topk: int = 2
    moe_ffn_hidden_size: Optional[int] = None
    moe_aux_loss_coeff: float = 0.0
    make_vocab_size_divisible_by: int = 128
    init_method_std: float = 0.02

    @property
    def query_groups(self) -> int:
        return self.num_query_groups or self.num_attention_heads

    @property
    def head_dim(self) -> int:
        return self.kv_channels or self.hidden_size // self.num_attention_heads

    def padded_vocab_size(self, tensor_parallel: int) -> int:
        """Vocab rounded up so the embedding splits evenly across TP ranks (Megatron's rule)."""
        multiple = self.make_vocab_size_divisible_by * tensor_parallel
        return -(-self.vocab_size // multiple) * multiple
