"""What every recipe shares without NeMo-Run: facts about a recipe, overrides, the task.

Kept free of `nemo_run` (5 s to import) so `medmegatron plan`, `python -m recipes` and the
tests load recipes instantly; the NeMo-Run bridge is `recipes/launch.py`.
"""

import difflib
import inspect
import math
from dataclasses import dataclass

from medmegatron.config import DataConfig, TrainConfig, config_from_dict, config_to_dict
from medmegatron.config.loading import parse_overrides
from medmegatron.errors import ConfigError

NGC_IMAGE = "nvcr.io/nvidia/pytorch:25.04-py3"  # keep in step with containers/Dockerfile
PROJECT_IMAGE = "medmegatron:latest"  # built by containers/Dockerfile


@dataclass(frozen=True)
class RecipeInfo:
    """Facts about a recipe that are not training config: where it is meant to run and why."""

    name: str
    gpus: int  # GPU count the layout is designed for (tests validate at this world size)
    gpu: str  # planner GPU type: h100-80gb | a100-80gb | h200
    tokens: float  # token budget the schedule is sized for
    source: str  # the published setup it follows

    @property
    def gpus_per_node(self) -> int:
        return min(self.gpus, 8)


ME_LLAMA_MIX = {"biomedical": 15.0, "clinical": 1.0, "general": 4.0}  # Me-LLaMA's 15 : 1 : 4


def blend(data_root: str, mix: dict[str, float], seq_length: int) -> DataConfig:
    """Named sources `<data_root>/<name>_text_document` sampled by `mix` (megatron-core normalises).

    Naming the sources gives per-source training/validation losses, and a source called
    "general" is what the forgetting monitor watches by default.
    """
    return DataConfig(paths=[f"{data_root}/{name}_text_document" for name in mix], names=list(mix),
                      weights=list(mix.values()), seq_length=seq_length)


def iters_for_tokens(tokens: float, global_batch_size: int, seq_length: int) -> int:
    """Training iterations that consume `tokens` (rounded up)."""
    return math.ceil(tokens / (global_batch_size * seq_length))


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if nested else value
    return out


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """`['parallel.tensor_parallel=8', 'config.schedule.train_iters=10']` applied to a copy.

    Goes through medmegatron's typed loader, so a misspelt key is an error naming the closest
    valid one and `model=llama2-13b` swaps the whole architecture for a preset.
    """
    keys = [o[len("config."):] if o.startswith("config.") else o for o in overrides]
    if not keys:
        return config
    extra = parse_overrides(keys)
    raw = config_to_dict(config)
    if isinstance(extra.get("model"), str):
        raw.pop("model")
    return config_from_dict(_merge(raw, extra))


def recipe_config(config_fn, args: list[str]) -> TrainConfig:
    """Build a recipe's config from command-line style arguments.

    `recipe.NAME=value` are arguments of the recipe's `config()` (e.g. `recipe.data_root=/data`);
    `config.a.b=value` or `a.b=value` are overrides of the resulting `TrainConfig`.
    """
    params = inspect.signature(config_fn).parameters
    kwargs, overrides = {}, []
    for arg in args:
        if arg.startswith("recipe."):
            name, _, value = arg[len("recipe."):].partition("=")
            if name not in params:
                close = difflib.get_close_matches(name, list(params), n=1)
                hint = f"did you mean 'recipe.{close[0]}'?" if close else f"valid: {', '.join(params)}"
                raise ConfigError(f"the recipe has no argument '{name}'; {hint}")
            kwargs[name] = value
        else:
            overrides.append(arg)
    return apply_overrides(config_fn(**kwargs), overrides)


def pretrain_task(config: TrainConfig) -> dict:
    """What each rank runs: the trainer, imported late so recipes load without torch/megatron."""
    from medmegatron.training import pretrain

    return pretrain(config)


def nccl_env() -> dict[str, str]:
    """Multi-node NCCL settings that recipes ship with (see containers/README.md for why)."""
    return {
        "NCCL_IB_TIMEOUT": "22",  # long IB retransmit timeout: fewer spurious failures at scale
        "NCCL_NVLS_ENABLE": "0",  # NVLS buffers cost GPU memory; enable once the layout has room
        "NCCL_P2P_NET_CHUNKSIZE": "2097152",  # larger PP send/recv chunks over the network
        "TORCH_NCCL_AVOID_RECORD_STREAMS": "1",  # release comm buffers promptly (less fragmentation)
        "CUDA_DEVICE_MAX_CONNECTIONS": "1",  # TP/SP comm-compute overlap ordering in megatron-core
        "NVTE_FWD_LAYERNORM_SM_MARGIN": "16",  # SMs left to comm kernels overlapping TE norms
        "NVTE_BWD_LAYERNORM_SM_MARGIN": "16",
    }
