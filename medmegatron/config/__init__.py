"""Typed configs (dataclasses only) and their validation. Imports nothing else of ours but errors."""

from medmegatron.config.checkpoint import CheckpointConfig
from medmegatron.config.data import DataConfig
from medmegatron.config.loading import config_from_dict, config_to_dict, load_config
from medmegatron.config.logging import LoggingConfig, MonitorConfig
from medmegatron.config.model import ModelConfig
from medmegatron.config.optim import OptimizerConfig, ScheduleConfig
from medmegatron.config.parallel import ParallelConfig
from medmegatron.config.precision import PrecisionConfig
from medmegatron.config.presets import PRESETS, get_preset
from medmegatron.config.train import TrainConfig
from medmegatron.config.validation import validate

__all__ = [
    "CheckpointConfig", "DataConfig", "LoggingConfig", "ModelConfig", "MonitorConfig", "OptimizerConfig",
    "ParallelConfig", "PrecisionConfig", "ScheduleConfig", "TrainConfig", "PRESETS",
    "config_from_dict", "config_to_dict", "get_preset", "load_config", "validate",
]
