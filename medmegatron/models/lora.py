"""LoRA on megatron-core's tensor-parallel linear layers, built from megatron-core's own layers.

For a column-parallel projection (QKV, FC1) the adapter is A = ColumnParallelLinear(in -> r,
gathered) and B = ColumnParallelLinear(r -> out, not gathered), so B's output shard lines up with
the base output shard; for a row-parallel one (attention output, FC2) A = RowParallelLinear
(in/tp -> r, reduced) and B = ColumnParallelLinear(r -> out, gathered). megatron-core's layers
bring the TP communication and its gradients, so nothing parallel is written here. B starts at
zero: a fresh adapter leaves the model's outputs exactly unchanged.

The adapters live in one container on the model root (`lora.layer{N}_{target}`, N the global
layer number), not inside the base layers: the base weights keep their checkpoint keys (so the
base loads from any plain checkpoint), and adapter keys are global across pipeline stages.
"""

from __future__ import annotations

import torch
from megatron.core.transformer.module import MegatronModule

ROW_PARALLEL = ("linear_proj", "linear_fc2")
PREFIX = "lora."


class LoRAPair(MegatronModule):
    def __init__(self, config, row_parallel_base: bool, in_features: int, out_features: int,
                 rank: int, alpha: float, gated: bool = False):
        from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear

        super().__init__(config)
        self.scale = alpha / rank
        self.row_parallel_base = row_parallel_base
        # B of a SwiGLU fc1 holds [gate_i; up_i] per TP rank, like the base weight: saved through
        # megatron-core's swiglu factory so a checkpoint reshards to another TP correctly.
        self.gated = gated
        zeros = torch.nn.init.zeros_
        if row_parallel_base:
            self.a = RowParallelLinear(in_features, rank, config=config, init_method=config.init_method,
                                       bias=False, input_is_parallel=True, skip_bias_add=True)
            self.b = ColumnParallelLinear(rank, out_features, config=config, init_method=zeros,
                                          bias=False, gather_output=True, skip_bias_add=True)
        else:
            self.a = ColumnParallelLinear(in_features, rank, config=config, init_method=config.init_method,
                                          bias=False, gather_output=True, skip_bias_add=True)
            self.b = ColumnParallelLinear(rank, out_features, config=config, init_method=zeros,
                                          bias=False, gather_output=False, skip_bias_add=True)

    def sharded_state_dict(self, prefix="", sharded_offsets=(), metadata=None):
        from megatron.core.transformer.mlp import apply_swiglu_sharded_factory

        state = super().sharded_state_dict(prefix, sharded_offsets, metadata)
        if self.gated:
            key = f"{prefix}b.weight"
            state[key] = apply_swiglu_sharded_factory(state[key], sharded_offsets)
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.a(x)
        out, _ = self.b(hidden)
        return out * self.scale

    def delta(self) -> torch.Tensor:
        """scale * B @ A for this rank's shard of the base weight."""
        from megatron.core.tensor_parallel.mappings import gather_from_tensor_model_parallel_region

        a, b = self.a.weight, self.b.weight  # shards along dim 0 (column) or dim 1 (row: a)
        if self.row_parallel_base:  # base [out, in/tp]: full B [out, r] @ A shard [r, in/tp]
            b_full = gather_from_tensor_model_parallel_region(b.t().contiguous()).t()
            return self.scale * b_full @ a
        a_full = gather_from_tensor_model_parallel_region(a.t().contiguous()).t()  # [r, in]
        return self.scale * b @ a_full  # base [out/tp, in]


class LoRAAdapters(MegatronModule):
    """Holds the pairs; megatron-core's default sharded_state_dict walks them (TP-sharded keys)."""


def _targets(module: torch.nn.Module, names: list[str]):
    from megatron.core.transformer.transformer_layer import TransformerLayer

    for layer in module.modules():
        if isinstance(layer, TransformerLayer):
            for path, sub in layer.named_modules():
                leaf = path.rsplit(".", 1)[-1]
                if leaf in names:
                    yield layer.layer_number, leaf, sub


def attach(chunks: list, rank: int, alpha: float, targets: list[str]) -> None:
    """Freeze every weight and add zero-initialised adapters to the target projections."""
    for model in chunks:
        for param in model.parameters():
            param.requires_grad = False
        container = LoRAAdapters(model.config)
        for layer_number, target, linear in list(_targets(model, targets)):
            pair = LoRAPair(model.config, target in ROW_PARALLEL, linear.input_size,
                            linear.output_size, rank, alpha,
                            gated=target == "linear_fc1" and model.config.gated_linear_unit)
            container.add_module(f"layer{layer_number}_{target}", pair)
            base_forward = linear.forward

            def forward(x, *args, _base=base_forward, _pair=pair, **kwargs):
                out, bias = _base(x, *args, **kwargs)
                return out + _pair(x), bias

            linear.forward = forward
            object.__setattr__(linear, "_lora_pair", pair)  # a reference, not a submodule
        model.lora = container


def has_lora(chunks: list) -> bool:
    return any(hasattr(chunk, "lora") for chunk in chunks)


@torch.no_grad()
def merge_into_base(chunks: list, targets: list[str]) -> None:
    """W += scale * B @ A on every rank's shard, then drop the adapters (a plain model again)."""
    for model in chunks:
        for _, _, linear in list(_targets(model, targets)):
            pair = linear.__dict__.pop("_lora_pair", None)
            if pair is None:
                continue
            linear.weight.add_(pair.delta().to(linear.weight.dtype))
            del linear.forward  # back to the class's forward
        if hasattr(model, "lora"):
            del model.lora
