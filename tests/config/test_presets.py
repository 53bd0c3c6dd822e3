"""Presets are the published architectures: HF `transformers` built from them has the published size.

Each preset is turned into the matching `transformers` config, the model is instantiated on the
meta device (no memory), and its parameter count must equal the count published for the real
checkpoint. A wrong head count, FFN width, vocabulary or tying changes that number.
"""

from __future__ import annotations

import pytest
import torch

from medmegatron.config import get_preset
from medmegatron.planning.params import total_params

PUBLISHED = {  # parameters of the released safetensors checkpoints
    "llama2-7b": 6_738_415_616,
    "llama2-13b": 13_015_864_320,
    "llama2-70b": 68_976_648_192,
    "llama3-8b": 8_030_261_248,
    "llama3-70b": 70_553_706_496,
    "mistral-7b": 7_241_732_096,
    "mistral-7b-v0.3": 7_248_023_552,
    "mixtral-8x7b": 46_702_792_704,
    "qwen2.5-7b": 7_615_616_512,
}


def hf_config(name: str):
    import transformers

    m = get_preset(name)
    common = dict(
        vocab_size=m.vocab_size, hidden_size=m.hidden_size, intermediate_size=m.ffn_hidden_size,
        num_hidden_layers=m.num_layers, num_attention_heads=m.num_attention_heads,
        num_key_value_heads=m.query_groups, rms_norm_eps=m.norm_epsilon, rope_theta=m.rotary_base,
        max_position_embeddings=m.max_position_embeddings,
        tie_word_embeddings=not m.untie_embeddings_and_output_weights,
    )
    if m.num_moe_experts:
        return transformers.MixtralConfig(num_local_experts=m.num_moe_experts,
                                          num_experts_per_tok=m.moe_router_topk, **common)
    if m.add_qkv_bias:
        return transformers.Qwen2Config(**common)
    if name.startswith("mistral"):
        return transformers.MistralConfig(sliding_window=m.sliding_window, **common)
    return transformers.LlamaConfig(**common)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_has_the_published_parameter_count(name):
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config(name))
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]
    assert total_params(get_preset(name)) == PUBLISHED[name], "the planner counts the same model"
