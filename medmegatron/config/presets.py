"""Model presets matching the published HF architectures, plus tiny variants for CPU tests.

Pure data: each preset is a `ModelConfig`. Sizes are those of the HF `config.json` of each model.
"""

from __future__ import annotations

import dataclasses

from medmegatron.config.model import ModelConfig
from medmegatron.errors import ConfigError

_LLAMA2 = dict(vocab_size=32000, max_position_embeddings=4096, norm_epsilon=1e-5, rotary_base=10000.0)
_LLAMA3 = dict(vocab_size=128256, max_position_embeddings=8192, norm_epsilon=1e-5, rotary_base=500000.0)

PRESETS: dict[str, ModelConfig] = {
    "llama2-7b": ModelConfig("llama2-7b", 32, 4096, 11008, 32, 32, **_LLAMA2),
    "llama2-13b": ModelConfig("llama2-13b", 40, 5120, 13824, 40, 40, **_LLAMA2),
    "llama2-70b": ModelConfig("llama2-70b", 80, 8192, 28672, 64, 8, **_LLAMA2),
    "llama3-8b": ModelConfig("llama3-8b", 32, 4096, 14336, 32, 8, **_LLAMA3),
    "llama3-70b": ModelConfig("llama3-70b", 80, 8192, 28672, 64, 8, **_LLAMA3),
    "mistral-7b": ModelConfig(  # v0.1: 4,096-token sliding window
        "mistral-7b", 32, 4096, 14336, 32, 8, vocab_size=32000, max_position_embeddings=32768,
        norm_epsilon=1e-5, rotary_base=10000.0, sliding_window=4096,
    ),
    "mistral-7b-v0.3": ModelConfig(
        "mistral-7b-v0.3", 32, 4096, 14336, 32, 8, vocab_size=32768,
        max_position_embeddings=32768, norm_epsilon=1e-5, rotary_base=1000000.0,
    ),
    "mixtral-8x7b": ModelConfig(
        "mixtral-8x7b", 32, 4096, 14336, 32, 8, vocab_size=32000, max_position_embeddings=32768,
        norm_epsilon=1e-5, rotary_base=1000000.0, num_moe_experts=8, moe_router_topk=2,
        moe_ffn_hidden_size=14336, moe_aux_loss_coeff=0.02,
    ),
    "qwen2.5-7b": ModelConfig(
        "qwen2.5-7b", 28, 3584, 18944, 28, 4, vocab_size=152064, max_position_embeddings=32768,
        norm_epsilon=1e-6, rotary_base=1000000.0, add_qkv_bias=True,
    ),
    # Tiny variants: same architecture family, CPU-sized. Vocabulary of the real Llama-2 tokenizer.
    "tiny-llama": ModelConfig(
        "tiny-llama", 4, 128, 352, 4, 2, vocab_size=32000, max_position_embeddings=512,
        norm_epsilon=1e-5, rotary_base=10000.0,
    ),
    "tiny-mistral": ModelConfig(
        "tiny-mistral", 4, 128, 352, 4, 2, vocab_size=32000, max_position_embeddings=512,
        norm_epsilon=1e-5, rotary_base=10000.0, sliding_window=64,
    ),
    "tiny-mixtral": ModelConfig(
        "tiny-mixtral", 4, 128, 352, 4, 2, vocab_size=32000, max_position_embeddings=512,
        norm_epsilon=1e-5, rotary_base=1000000.0, num_moe_experts=4, moe_router_topk=2,
        moe_ffn_hidden_size=176, moe_aux_loss_coeff=0.0,
    ),
    "tiny-qwen": ModelConfig(
        "tiny-qwen", 4, 128, 352, 4, 2, vocab_size=32000, max_position_embeddings=512,
        norm_epsilon=1e-6, rotary_base=1000000.0, add_qkv_bias=True,
    ),
}


def get_preset(name: str, **overrides) -> ModelConfig:
    """A copy of preset `name` with `overrides` applied."""
    if name not in PRESETS:
        raise ConfigError(
            f"model preset '{name}' is unknown: choose one of {', '.join(sorted(PRESETS))}, "
            "or give the architecture fields under `model:` with `preset: custom`"
        )
    return dataclasses.replace(PRESETS[name], **overrides)
