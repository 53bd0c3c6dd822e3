"""What every recipe shares: the typed-config <-> NeMo-Run bridge, the task, executors, `main`.

Recipes build a plain `TrainConfig` (so validation and the planner see exactly what will run)
and hand NeMo-Run a `run.Config` mirror of it, which is what makes `config.a.b=value` overrides,
`--dryrun`, YAML export and remote executors work.
"""


import dataclasses
import difflib
import inspect
import math
import sys
from dataclasses import dataclass
from typing import Any, Optional

import fiddle as fdl
import nemo_run as run

from medmegatron.config import TrainConfig, config_from_dict, config_to_dict
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

    @property
    def nodes(self) -> int:
        return max(1, self.gpus // 8)


def iters_for_tokens(tokens: float, global_batch_size: int, seq_length: int) -> int:
    """Training iterations that consume `tokens` (rounded up)."""
    return math.ceil(tokens / (global_batch_size * seq_length))


def to_run_config(obj: Any) -> Any:
    """A dataclass tree -> the equivalent `run.Config` tree (leaves copied as they are)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kwargs = {f.name: to_run_config(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return run.Config(type(obj), **kwargs)
    return obj


def build_config(config: Any) -> TrainConfig:
    """`run.Config[TrainConfig]` (or a recipe's `run.Partial`) -> the `TrainConfig` it describes."""
    if isinstance(config, run.Partial):
        config = config.config
    built = fdl.build(config) if isinstance(config, fdl.Buildable) else config
    if not isinstance(built, TrainConfig):
        raise TypeError(f"expected a TrainConfig, got {type(built).__name__}")
    return built


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


def as_task(config: TrainConfig) -> run.Partial:
    return run.Partial(pretrain_task, config=to_run_config(config))


# ---- executors ---------------------------------------------------------------------------------
# Registered as NeMo-Run factories so the command line can say `executor=slurm executor.nodes=8`.


@run.cli.factory(target=run.Executor, name="local")
def local_executor(gpus_per_node: int = 8, nodes: int = 1) -> run.Config[run.LocalExecutor]:
    """torchrun on this machine (or inside an interactive allocation)."""
    return run.Config(run.LocalExecutor, ntasks_per_node=gpus_per_node, nodes=nodes, launcher="torchrun")


def nccl_env() -> dict[str, str]:
    """Multi-node NCCL settings that recipes ship with (see containers/README.md for why)."""
    return {
        "NCCL_IB_TIMEOUT": "22",  # long IB retransmit timeout: fewer spurious failures at scale
        "NCCL_NVLS_ENABLE": "0",  # NVLS buffers cost GPU memory; enable once the layout has room
        "NCCL_P2P_NET_CHUNKSIZE": "2097152",  # larger PP send/recv chunks over the network
        "TORCH_NCCL_AVOID_RECORD_STREAMS": "1",  # release comm buffers promptly (less fragmentation)
        "CUDA_DEVICE_MAX_CONNECTIONS": "1",  # TP/SP comm-compute overlap ordering in megatron-core
        "NVTE_FWD_LAYERNORM_SM_MARGIN": "16",
        "NVTE_BWD_LAYERNORM_SM_MARGIN": "16",
    }


def _packager(ship_code: bool) -> run.Config:
    """Which code runs: the copy baked into the image (default: nothing to upload, works from
    any directory), or with `ship_code` the committed git HEAD, extracted to /nemo_run/code,
    which then shadows the image's copy (commit before launching)."""
    return run.Config(run.GitArchivePackager) if ship_code else run.Config(run.Packager)


@run.cli.factory(target=run.Executor, name="slurm")
def slurm_executor(
    account: str = "YOUR_ACCOUNT",
    partition: str = "batch",
    nodes: int = 8,
    gpus_per_node: int = 8,
    time: str = "04:00:00",
    container_image: str = PROJECT_IMAGE,
    container_mounts: Optional[list[str]] = None,
    ssh_host: Optional[str] = None,
    ssh_user: Optional[str] = None,
    job_dir: str = "/lustre/medmegatron/nemo_run",
    ship_code: bool = False,
) -> run.Config[run.SlurmExecutor]:
    """Slurm with pyxis/enroot: one task per GPU, torchrun launcher, the project container."""
    tunnel = (
        run.Config(run.SSHTunnel, host=ssh_host, user=ssh_user or "", job_dir=job_dir)
        if ssh_host else run.Config(run.LocalTunnel, job_dir=job_dir)
    )
    return run.Config(
        run.SlurmExecutor, account=account, partition=partition, nodes=nodes,
        ntasks_per_node=gpus_per_node, gpus_per_node=gpus_per_node, time=time,
        container_image=container_image,
        container_mounts=container_mounts or ["/lustre:/lustre"], exclusive=True,
        mem="0", launcher="torchrun", env_vars=nccl_env(), tunnel=tunnel,
        packager=_packager(ship_code),
    )


@run.cli.factory(target=run.Executor, name="docker")
def docker_executor(
    gpus: int = 8, container_image: str = PROJECT_IMAGE, volumes: Optional[list[str]] = None,
    ship_code: bool = False,
) -> run.Config[run.DockerExecutor]:
    """One node in Docker with the NVIDIA runtime (the shm and ulimits NCCL needs)."""
    return run.Config(
        run.DockerExecutor, container_image=container_image, num_gpus=gpus, runtime="nvidia",
        ntasks_per_node=gpus, ipc_mode="host", shm_size="16g",
        ulimits=["memlock:-1", "stack:67108864"], volumes=volumes or [], launcher="torchrun",
        env_vars=nccl_env(), packager=_packager(ship_code),
    )


def main(config_fn, info: RecipeInfo, argv: Optional[list[str]] = None) -> None:
    """`python recipes/<name>.py [recipe.x=v] [config.a.b=v ...] [run.executor=slurm ...] [--dryrun]`.

    `recipe.*` and `config.*` arguments are applied here with medmegatron's typed loader
    (NeMo-Run 0.11 cannot parse fields of dataclasses whose annotations are postponed strings);
    everything else goes to NeMo-Run's CLI, whose default task is the recipe and default
    executor local torchrun.
    """
    args = sys.argv[1:] if argv is None else argv
    ours = [a for a in args if a.startswith(("config.", "recipe."))]
    try:
        config = recipe_config(config_fn, ours)
    except ConfigError as exc:
        print(f"{info.name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.argv = [sys.argv[0]] + [a for a in args if a not in ours]
    run.cli.main(
        pretrain_task, name=info.name, default_factory=lambda: as_task(config),
        default_executor=local_executor(gpus_per_node=info.gpus_per_node),
    )
