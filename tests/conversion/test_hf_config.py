"""HF config <-> ModelConfig: every function-changing field is kept, refused, or checked."""

from __future__ import annotations

import pytest

from conversion.errors import ConversionError
from conversion.hf_config import hf_config_from_model, model_config_from_hf

LLAMA = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 300, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
         "max_position_embeddings": 131072, "tie_word_embeddings": False}
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def test_both_rope_styles_read_the_same():
    v4 = {**LLAMA, "rope_scaling": LLAMA3_SCALING}
    v5 = {k: v for k, v in LLAMA.items() if k != "rope_theta"}
    v5["rope_parameters"] = {**LLAMA3_SCALING, "rope_theta": 500000.0}
    (_, a), (_, b) = model_config_from_hf(v4), model_config_from_hf(v5)
    assert a == b and a.rotary_base == 500000.0 and a.rope_scaling["factor"] == 8.0


@pytest.mark.parametrize("change, message", [
    ({"architectures": ["GPT2LMHeadModel"]}, "not supported"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope type 'yarn'"),
    ({"rope_scaling": {**LLAMA3_SCALING, "low_freq_factor": 2.0}}, "low_freq_factor"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"attention_bias": True}, "attention_bias"),
])
def test_unsupported_configs_are_refused(change, message):
    with pytest.raises(ConversionError, match=message):
        model_config_from_hf({**LLAMA, **change})


def test_round_trip_keeps_model_fields_and_template():
    mixtral = {**LLAMA, "architectures": ["MixtralForCausalLM"], "num_local_experts": 8,
               "num_experts_per_tok": 2, "router_aux_loss_coef": 0.02, "sliding_window": 4096,
               "bos_token_id": 1, "rope_theta": 1e6}
    family, cfg = model_config_from_hf(mixtral)
    out = hf_config_from_model(cfg, family, mixtral)
    for key in ("num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "sliding_window",
                "rope_theta", "rms_norm_eps", "tie_word_embeddings", "bos_token_id", "vocab_size"):
        assert out[key] == mixtral[key], key
    assert model_config_from_hf(out) == (family, cfg)
    qwen = {**LLAMA, "architectures": ["Qwen2ForCausalLM"], "tie_word_embeddings": True,
            "sliding_window": 131072, "use_sliding_window": False}
    family, cfg = model_config_from_hf(qwen)
    assert cfg.add_qkv_bias and not cfg.untie_embeddings_and_output_weights and cfg.sliding_window is None
    assert hf_config_from_model(cfg, family, qwen)["tie_word_embeddings"] is True
