"""Model construction on megatron-core: `ModelConfig` -> `TransformerConfig` -> `GPTModel` chunks."""

from medmegatron.models.build import build_model, transformer_config

__all__ = ["build_model", "transformer_config"]
