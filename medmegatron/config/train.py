"""The whole run's config: one dataclass tree, loaded from YAML plus `key=value` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from medmegatron.config.checkpoint import CheckpointConfig
from medmegatron.config.data import DataConfig
from medmegatron.config.logging import LoggingConfig, MonitorConfig
from medmegatron.config.lora import LoRAConfig
from medmegatron.config.model import ModelConfig
from medmegatron.config.optim import OptimizerConfig, ScheduleConfig
from medmegatron.config.parallel import ParallelConfig
from medmegatron.config.precision import PrecisionConfig


@dataclass
class TrainConfig:
    run_dir: str = "runs/default"
    seed: int = 1234
    model: ModelConfig = field(default_factory=ModelConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: DataConfig = field(default_factory=DataConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    eval_interval: Optional[int] = None  # None = validate only at the end
    eval_iters: int = 2
    # NEFTune (Jain et al. 2023): uniform noise of scale alpha/sqrt(seq*hidden) added to the
    # input embeddings during SFT; None = off.
    neftune_noise_alpha: Optional[float] = None
