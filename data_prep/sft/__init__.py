"""Instruction-tuning (SFT) data: chat JSONL -> templated, loss-masked, packed Megatron datasets.

Entry point: `build_sft_dataset(SFTConfig) -> manifest`. Stages, one module each:
`conversations` (read + validate JSONL), `templates` (render a conversation into pieces that are
trained or not), `encode` (pieces -> token ids + loss mask, overlong policy), `mix` (how many
samples each source contributes), `packing` (best-fit into full-length sequences), `writer`
(three Megatron indexed datasets: tokens, loss mask, sample boundaries).
"""

from data_prep.sft.build import build_sft_dataset
from data_prep.sft.config import SFTConfig, SFTSource
from data_prep.sft.templates import TEMPLATES

__all__ = ["build_sft_dataset", "SFTConfig", "SFTSource", "TEMPLATES"]
