"""The resolved parallel layout of a config on N GPUs: every degree the planner reasons with.

Built only after `medmegatron.config.validate` has accepted the config for that world size, so
the arithmetic here (DP, microbatches, layers per chunk) never divides unevenly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from medmegatron.config.train import TrainConfig
from medmegatron.config.validation import validate
from medmegatron.errors import ConfigError

RECOMPUTE = (None, "selective", "full")


@dataclass(frozen=True)
class Layout:
    gpus: int
    tp: int
    pp: int
    vp: int  # 1 = no interleaving
    cp: int
    ep: int
    etp: int
    dp: int
    sequence_parallel: bool
    distributed_optimizer: bool
    recompute: Optional[str]
    recompute_num_layers: Optional[int]
    micro_batch_size: int
    global_batch_size: int
    seq_length: int

    @property
    def num_microbatches(self) -> int:
        return self.global_batch_size // (self.micro_batch_size * self.dp)

    @property
    def expert_dp(self) -> int:
        """Ranks sharing one expert shard: the group the experts' optimizer state is split over."""
        return self.gpus // (self.pp * self.ep * self.etp)

    def short(self) -> str:
        parts = [f"TP{self.tp}", f"PP{self.pp}"]
        if self.vp > 1:
            parts.append(f"VP{self.vp}")
        if self.cp > 1:
            parts.append(f"CP{self.cp}")
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        parts.append(f"DP{self.dp}")
        if self.sequence_parallel:
            parts.append("SP")
        if self.recompute:
            n = f"{self.recompute_num_layers}" if self.recompute_num_layers else ""
            parts.append(f"recompute={self.recompute}{n}")
        parts.append(f"mbs{self.micro_batch_size}")
        return " ".join(parts)


def resolve_layout(cfg: TrainConfig, gpus: int) -> Layout:
    """Validate `cfg` for `gpus` ranks (paths not checked) and return its layout."""
    problems = []
    p = cfg.parallel
    if p.recompute_granularity not in RECOMPUTE:
        problems.append(
            f"parallel.recompute_granularity='{p.recompute_granularity}' must be null, 'selective' "
            "or 'full'"
        )
    if p.recompute_num_layers is not None and p.recompute_granularity != "full":
        problems.append("parallel.recompute_num_layers needs parallel.recompute_granularity=full")
    if p.recompute_num_layers is not None and p.recompute_num_layers < 1:
        problems.append("parallel.recompute_num_layers must be >= 1 (or null for all layers)")
    try:
        validate(cfg, world_size=gpus, cuda_available=True, check_paths=False)
    except ConfigError as exc:
        problems.extend(line.strip()[2:] for line in str(exc).splitlines()[1:])
    if problems:
        raise ConfigError(f"the layout cannot run on {gpus} GPUs:\n  - " + "\n  - ".join(problems))
    dp = gpus // (p.tensor_parallel * p.pipeline_parallel * p.context_parallel)
    return Layout(
        gpus=gpus, tp=p.tensor_parallel, pp=p.pipeline_parallel,
        vp=p.virtual_pipeline_parallel or 1, cp=p.context_parallel, ep=p.expert_parallel,
        etp=p.expert_tensor_parallel or (p.tensor_parallel if cfg.model.num_moe_experts else 1),
        dp=dp, sequence_parallel=p.sequence_parallel,
        distributed_optimizer=p.use_distributed_optimizer, recompute=p.recompute_granularity,
        recompute_num_layers=p.recompute_num_layers,
        micro_batch_size=cfg.schedule.micro_batch_size,
        global_batch_size=cfg.schedule.global_batch_size, seq_length=cfg.data.seq_length,
    )
