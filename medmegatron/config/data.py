"""Training data: Megatron indexed datasets (.bin/.idx prefixes) with blend weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class DataConfig:
    # Dataset prefixes (path without .bin/.idx); weights are sampling probabilities (None = by size).
    paths: list[str] = field(default_factory=list)
    weights: Optional[list[float]] = None
    # One name per path for per-source losses ("pubmed", "clinical", "general"); None = file names.
    names: Optional[list[str]] = None
    tokenizer: Optional[str] = None  # None = bundled Llama-2 SentencePiece model (mistral-common)
    seq_length: int = 128
    split: str = "98,2,0"  # train, valid, test
    seed: int = 1234
    cache_dir: Optional[str] = None  # where megatron-core caches its sample indices; None = run dir
    # 'pretrain' = plain token streams; 'sft' = instruction data whose prompt tokens are
    # masked out of the loss (the trainer must honour or refuse this).
    kind: str = "pretrain"

    def source_names(self) -> list[str]:
        from pathlib import Path

        return list(self.names) if self.names else [Path(p).name for p in self.paths]
