"""Tiny random HF Llama models for merge tests: a base and 'fine-tunes' of it (base + noise)."""

from __future__ import annotations

from pathlib import Path

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=96, max_position_embeddings=64)


def make_llama(out: Path, seed: int, base: Path | None = None, scale: float = 0.05,
               max_shard_size: str = "50KB", **overrides) -> Path:
    """Save a tiny Llama; with `base`, its weights are base + scale * N(0, 1) (a fine-tune)."""
    import torch
    import transformers

    config = transformers.LlamaConfig(**{**TINY, **overrides})
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).eval()
    if base is not None:
        ref = transformers.LlamaForCausalLM.from_pretrained(base).state_dict()
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(ref[name] + scale * torch.randn_like(p))
    model.save_pretrained(out, max_shard_size=max_shard_size)
    return Path(out)


def state_dict(folder: Path) -> dict:
    import transformers

    return transformers.LlamaForCausalLM.from_pretrained(folder).state_dict()
