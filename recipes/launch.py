"""The NeMo-Run side of recipes: typed config <-> `run.Config`, the task, executors, `main`.

Recipes build a plain `TrainConfig` (so validation and the planner see exactly what will run)
and hand NeMo-Run a `run.Config` mirror of it, which is what makes `--dryrun`, YAML export and
remote executors work.
"""

import dataclasses
import sys
from typing import Any, Optional

import fiddle as fdl
import nemo_run as run

from medmegatron.config import TrainConfig
from medmegatron.errors import ConfigError
from recipes.common import PROJECT_IMAGE, RecipeInfo, nccl_env, pretrain_task, recipe_config


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


def as_task(config: TrainConfig) -> run.Partial:
    return run.Partial(pretrain_task, config=to_run_config(config))


# ---- executors ---------------------------------------------------------------------------------
# Registered as NeMo-Run factories: `run.executor=slurm run.executor.nodes=8` on the command line.


@run.cli.factory(target=run.Executor, name="local")
def local_executor(gpus_per_node: int = 8, nodes: int = 1) -> run.Config[run.LocalExecutor]:
    """torchrun on this machine (or inside an interactive allocation)."""
    return run.Config(run.LocalExecutor, ntasks_per_node=gpus_per_node, nodes=nodes, launcher="torchrun")


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
    """Slurm with pyxis/enroot and the project container: NeMo-Run turns `ntasks_per_node` into
    one torchrun per node starting a rank per GPU."""
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
