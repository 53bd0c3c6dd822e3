"""RMSNorm for megatron-core's local spec that also works under sequence parallelism.

megatron-core's torch fallback (`WrappedTorchNorm`) refuses `sequence_parallel` outright, and the
norms that accept it (Apex, Transformer Engine) are GPU-only. Nothing about SP needs a special
kernel: each TP rank normalises its own slice of the sequence, and the weight gradient is a
partial sum over that slice. megatron-core's `finalize_model_grads` already all-reduces, over the
TP group, the gradients of parameters marked `sequence_parallel`; this class only sets that mark.
Numerics and parameter names are those of `torch.nn.RMSNorm`, exactly as `WrappedTorchNorm`.
"""

from __future__ import annotations

import copy

import torch


class SequenceParallelRMSNorm(torch.nn.RMSNorm):
    def __init__(self, config, hidden_size: int, eps: float = 1e-5, **unused):
        super().__init__(normalized_shape=hidden_size, eps=eps, dtype=config.params_dtype)
        if config.sequence_parallel:
            setattr(self.weight, "sequence_parallel", True)


def local_block_spec(layer_spec, config, vp_stage: int | None):
    """The local layer spec for this stage's layers with SP-capable norms, as a block spec."""
    from megatron.core.transformer.torch_norm import WrappedTorchNorm
    from megatron.core.transformer.transformer_block import (TransformerBlockSubmodules,
                                                             get_num_layers_to_build)

    spec = copy.deepcopy(layer_spec)
    for name in ("input_layernorm", "pre_mlp_layernorm", "pre_cross_attn_layernorm"):
        if getattr(spec.submodules, name, None) is WrappedTorchNorm:
            setattr(spec.submodules, name, SequenceParallelRMSNorm)
    layers = get_num_layers_to_build(config, vp_stage=vp_stage)
    return TransformerBlockSubmodules(layer_specs=[spec] * layers, layer_norm=SequenceParallelRMSNorm)
