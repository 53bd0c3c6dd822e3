"""Tiny random HF models, one per family, built by `transformers` from a config (fixed seed).

Shapes are small but keep every layout rule live: GQA (4 heads, 2 KV groups), a vocabulary
that pads differently at TP=1 and TP=2 (1100 -> 1152 / 1280), 4 layers (PP=2 x VP=2),
llama3 RoPE scaling, Qwen2 QKV bias + tied embeddings, Mistral's sliding window shorter than
the test sequence, Mixtral with 4 experts top-2.
"""

from __future__ import annotations

from pathlib import Path

COMMON = dict(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=1100, max_position_embeddings=16384,
              rms_norm_eps=1e-5)

FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(
        rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})),
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(sliding_window=16, rope_theta=10000.0)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(tie_word_embeddings=True, rope_theta=1000000.0,
                                                      rms_norm_eps=1e-6)),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(
        intermediate_size=176, num_local_experts=4, num_experts_per_tok=2, rope_theta=1000000.0,
        router_aux_loss_coef=0.02)),
}


def make_hf_model(family: str, out: Path, seed: int = 0, tokenizer: bool = False, **overrides) -> Path:
    """Save a random tiny `family` model (safetensors, fp32, config `overrides`) to `out`."""
    import shutil

    import torch
    import transformers

    config_cls, model_cls, extra = FAMILIES[family]
    config = getattr(transformers, config_cls)(**{**COMMON, **extra, **overrides})
    torch.manual_seed(seed)
    model = getattr(transformers, model_cls)(config).eval()
    with torch.no_grad():  # norms start at 1.0; randomise so a misplaced norm shows in logits
        for name, param in model.named_parameters():
            if "norm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(out, max_shard_size="1MB")  # several shards + index
    if tokenizer:
        from medmegatron.tokenizers import bundled_llama2_tokenizer

        shutil.copy(bundled_llama2_tokenizer(), Path(out) / "tokenizer.model")
    return Path(out)
