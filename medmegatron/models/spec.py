"""Layer spec choice: Transformer Engine when it can run, megatron-core's local modules otherwise.

TE is GPU-only; importing it on a CPU machine fails (or is absent), so it is imported lazily and
only when CUDA is available. Both specs build the same parameters (modulo norm placement names,
which the checkpoint converters handle).
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=1)
def transformer_engine_available() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import transformer_engine  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA build raising at import
        return False
    return True


def layer_spec(num_experts: int | None, use_te: bool | None = None):
    from megatron.core.models.gpt import gpt_layer_specs

    if use_te is None:
        use_te = transformer_engine_available()
    if use_te:
        return gpt_layer_specs.get_gpt_layer_with_transformer_engine_spec(
            num_experts=num_experts, moe_grouped_gemm=bool(num_experts)
        )
    return gpt_layer_specs.get_gpt_layer_local_spec(
        num_experts=num_experts, moe_grouped_gemm=False, normalization="RMSNorm"
    )
