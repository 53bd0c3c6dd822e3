"""Layout rules on hand-made tensors (the end-to-end proof is the parity test at TP/PP/EP)."""

from __future__ import annotations

import pytest
import torch

from conversion import layout
from conversion.errors import ConversionError
from medmegatron.config import ModelConfig

CFG = ModelConfig(num_layers=2, hidden_size=8, ffn_hidden_size=6, num_attention_heads=4,
                  num_query_groups=2, kv_channels=1, vocab_size=10)


def entry(table, key):
    return next(e for e in table if e.key == key)


def test_qkv_is_interleaved_per_query_group():
    """Rows per group g: [q heads of g; k_g; v_g] - not [Q; K; V] (the TP>1/GQA bug)."""
    qkv = entry(layout.mapping(CFG, "llama"), "decoder.layers.self_attention.linear_qkv.weight")
    q = torch.tensor([[10.0], [11.0], [12.0], [13.0]]).expand(4, 8)  # 4 heads, head_dim 1
    k = torch.tensor([[20.0], [21.0]]).expand(2, 8)
    v = torch.tensor([[30.0], [31.0]]).expand(2, 8)
    fused = layout.to_megatron(qkv, [q, k, v], CFG)
    assert fused[:, 0].tolist() == [10, 11, 20, 30, 12, 13, 21, 31]
    back = layout.to_hf(qkv, fused, CFG)
    assert all(torch.equal(a, b) for a, b in zip(back, (q, k, v)))


def test_qkv_bias_and_fc1_and_vocab_rules_invert():
    cfg = ModelConfig(**{**CFG.__dict__, "add_qkv_bias": True})
    table = layout.mapping(cfg, "qwen2", padded_vocab=cfg.padded_vocab_size(2))
    bias = entry(table, "decoder.layers.self_attention.linear_qkv.bias")
    parts = [torch.arange(4.0), torch.arange(2.0) + 10, torch.arange(2.0) + 20]
    fused = layout.to_megatron(bias, parts, cfg)
    assert fused.tolist() == [0, 1, 10, 20, 2, 3, 11, 21]
    fc1 = entry(table, "decoder.layers.mlp.linear_fc1.weight")
    gate, up = torch.randn(6, 8), torch.randn(6, 8)
    fused = layout.to_megatron(fc1, [gate, up], cfg)
    assert torch.equal(fused[:6], gate) and torch.equal(fused[6:], up)  # [gate; up]
    emb = entry(table, "embedding.word_embeddings.weight")
    assert emb.shape == (256, 8)  # padded to 128 x TP=2
    weights = torch.randn(10, 8)
    padded = layout.to_megatron(emb, [weights], cfg)
    assert padded.shape == (256, 8) and not padded[10:].any()
    assert torch.equal(layout.to_hf(emb, padded, cfg)[0], weights)


def test_tables_per_family():
    tied = ModelConfig(**{**CFG.__dict__, "untie_embeddings_and_output_weights": False})
    assert "output_layer.weight" not in [e.key for e in layout.mapping(tied, "qwen2")]
    moe = ModelConfig(**{**CFG.__dict__, "num_moe_experts": 4, "moe_ffn_hidden_size": 3})
    table = layout.mapping(moe, "mixtral")
    experts = entry(table, "decoder.layers.mlp.experts.experts.linear_fc1.weight")
    assert experts.global_shape(moe) == (2, 4, 6, 8)  # (layer, expert, [gate; up], hidden)
    assert experts.hf_names((1, 3)) == ["model.layers.1.block_sparse_moe.experts.3.w1.weight",
                                        "model.layers.1.block_sparse_moe.experts.3.w3.weight"]
    assert layout.MOE_PRE_MLP_NORM["te"] in [e.key for e in layout.mapping(moe, "mixtral", spec="te")]
    with pytest.raises(ConversionError):
        layout.mapping(CFG, "mixtral")  # dense config, MoE family
    with pytest.raises(ConversionError):
        layout.mapping(CFG, "gpt2")


def test_shape_mismatch_is_a_clear_error():
    proj = entry(layout.mapping(CFG, "llama"), "decoder.layers.self_attention.linear_proj.weight")
    with pytest.raises(ConversionError, match="do not match the config"):
        layout.to_megatron(proj, [torch.zeros(8, 5)], CFG, (0,))
