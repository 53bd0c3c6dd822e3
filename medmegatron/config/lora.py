"""LoRA adapters on the attention and MLP projections (Me-LLaMA's instruction tuning)."""

from __future__ import annotations

from dataclasses import dataclass, field

LORA_TARGETS = ("linear_qkv", "linear_proj", "linear_fc1", "linear_fc2")


@dataclass
class LoRAConfig:
    rank: int = 0  # 0 = off (full fine-tuning / pretraining)
    alpha: float = 16.0  # update scale alpha / rank
    targets: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    # After training, also write `RUN_DIR/merged/`: base + adapters as a plain checkpoint that
    # `medmegatron convert export` turns into an HF model.
    merge_at_end: bool = False
