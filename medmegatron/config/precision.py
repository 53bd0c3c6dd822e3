"""Numeric precision: bf16 on GPUs by default, fp32 on CPU, FP8 only through Transformer Engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class PrecisionConfig:
    # 'auto' = bf16 when CUDA is available, fp32 otherwise (CPU kernels for bf16 are slow and
    # the layout-equivalence tests need fp32 to compare at 1e-5).
    dtype: str = "auto"  # auto | fp32 | bf16 | fp16
    # None | delayed | tensorwise (current scaling) | blockwise | mxfp8 (Transformer Engine):
    # delayed/tensorwise on Hopper, blockwise on Hopper with TE >= 2.3, mxfp8 on Blackwell.
    fp8: Optional[str] = None

    def resolved_dtype(self, cuda_available: bool) -> str:
        if self.dtype == "auto":
            return "bf16" if cuda_available else "fp32"
        return self.dtype
