"""Launch a recipe on Slurm (pyxis/enroot) through NeMo-Run, from a login node or over SSH.

    python containers/nemo_run_slurm.py cpt_70b --account ACC --partition batch --nodes 8 \
        --image /lustre/images/medmegatron.sqsh [--ssh-host login.cluster --ssh-user me] [--dryrun]

The same executor is available on every recipe's command line as `run.executor=slurm`
(recipes/README.md); this file shows it as code, for experiments with several tasks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fiddle as fdl  # noqa: E402
import nemo_run as run  # noqa: E402

from recipes import RECIPES  # noqa: E402
from recipes.launch import as_task, slurm_executor  # noqa: E402


def build(args: argparse.Namespace) -> tuple[run.Partial, run.SlurmExecutor]:
    """(task, executor) for `args`; separate from launching so it can be tested offline."""
    module = importlib.import_module(f"recipes.{args.recipe}")
    task = as_task(module.config(data_root=args.data_root, run_dir=args.run_dir))
    executor = fdl.build(slurm_executor(
        account=args.account, partition=args.partition, nodes=args.nodes, gpus_per_node=8,
        time=args.time, container_image=args.image, container_mounts=[args.mounts],
        ssh_host=args.ssh_host, ssh_user=args.ssh_user, job_dir=args.job_dir,
        ship_code=args.ship_code,
    ))
    return task, executor


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=RECIPES)
    p.add_argument("--account", required=True)
    p.add_argument("--partition", default="batch")
    p.add_argument("--nodes", type=int, default=8)
    p.add_argument("--time", default="04:00:00")
    p.add_argument("--image", default="/lustre/images/medmegatron.sqsh")
    p.add_argument("--mounts", default="/lustre:/lustre")
    p.add_argument("--data-root", default="/lustre/medmegatron/data")
    p.add_argument("--run-dir", default=None, help="default: /lustre/medmegatron/runs/RECIPE")
    p.add_argument("--job-dir", default="/lustre/medmegatron/nemo_run", help="NeMo-Run's job files")
    p.add_argument("--ssh-host")
    p.add_argument("--ssh-user")
    p.add_argument("--ship-code", action="store_true",
                   help="run the committed git HEAD instead of the code baked into the image")
    p.add_argument("--dryrun", action="store_true", help="print the sbatch script, submit nothing")
    args = p.parse_args(argv)
    args.run_dir = args.run_dir or f"/lustre/medmegatron/runs/{args.recipe}"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    task, executor = build(args)
    with run.Experiment(f"medmegatron-{args.recipe}", executor=executor) as exp:
        exp.add(task, name=args.recipe)
        if args.dryrun:
            exp.dryrun()
        else:
            exp.run(detach=True)


if __name__ == "__main__":
    main()
