"""How the model and data are split across ranks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class ParallelConfig:
    """Parallel layout. Data parallel size is derived: world / (TP x PP x CP)."""

    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    virtual_pipeline_parallel: Optional[int] = None  # model chunks per pipeline rank
    context_parallel: int = 1
    expert_parallel: int = 1
    expert_tensor_parallel: Optional[int] = None
    sequence_parallel: bool = False
    use_distributed_optimizer: bool = True
    # 'alltoall' is what large EP runs use; 'allgather' is simpler and fine for small EP.
    moe_token_dispatcher: str = "alltoall"
    # Activation recompute: None | 'selective' (megatron-core's core_attn) | 'full'. With 'full',
    # recompute_num_layers = layers per pipeline chunk recomputed (megatron 'block' method);
    # None = all of them.
    recompute_granularity: Optional[str] = None
    recompute_num_layers: Optional[int] = None

    @property
    def model_parallel(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel * self.context_parallel
