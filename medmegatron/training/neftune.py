"""NEFTune (Jain et al. 2023): uniform noise on the input embeddings during instruction tuning.

noise = U(-1, 1) * alpha / sqrt(L * d), L the (padded/packed) sequence length and d the hidden
size, as in the reference implementation; training mode only. Not in megatron-core, so it is a
forward hook on the first pipeline stage's `embedding` module. The noise is drawn from a
generator seeded by (seed, data-parallel rank, iteration, micro-batch), never by the TP rank, so
every tensor-parallel rank adds the same numbers; under sequence parallelism the full-sequence
noise is drawn and each rank keeps its slice, which makes TP, TP+SP and a single process add
identical noise. Seeding by iteration also makes a resumed run draw what the uninterrupted one
would have.
"""

from __future__ import annotations

import math

import torch


class NEFTune:
    def __init__(self, alpha: float, seed: int):
        self.alpha = float(alpha)
        self.seed = int(seed)
        self.iteration = 0
        self.microbatch = 0
        self._handles = []

    def attach(self, chunks: list) -> None:
        for chunk in chunks:
            module = chunk.module if hasattr(chunk, "module") else chunk
            if getattr(module, "pre_process", False):
                self._handles.append(module.embedding.register_forward_hook(self._hook))

    def start_step(self, iteration: int) -> None:
        self.iteration, self.microbatch = iteration, 0

    def scale(self, sequence_length: int, hidden: int) -> float:
        return self.alpha / math.sqrt(sequence_length * hidden)

    def _hook(self, module, inputs, output: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return output
        from megatron.core import parallel_state as ps

        local_s, batch, hidden = output.shape  # [s, b, h] (s split across TP ranks under SP)
        sp = getattr(module.config, "sequence_parallel", False)
        tp = ps.get_tensor_model_parallel_world_size()
        full_s = local_s * tp if sp else local_s
        generator = torch.Generator(device=output.device)
        generator.manual_seed(hash((self.seed, ps.get_data_parallel_rank(), self.iteration,
                                    self.microbatch)) & 0x7FFF_FFFF_FFFF_FFFF)
        self.microbatch += 1
        noise = torch.rand(full_s, batch, hidden, generator=generator, device=output.device,
                           dtype=torch.float32).mul_(2).sub_(1)
        if sp:
            rank = ps.get_tensor_model_parallel_rank()
            noise = noise[rank * local_s:(rank + 1) * local_s]
        return output + noise.to(output.dtype) * self.scale(full_s, hidden)

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
