"""Launching: re-exec a command under torchrun when several local processes are asked for.

`medmegatron train ... --nproc-per-node 4` on a workstation becomes
`python -m torch.distributed.run --standalone --nproc-per-node 4 -m medmegatron train ...`;
clusters launch through NeMo-Run / Slurm, which set the torchrun variables themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys


def under_launcher() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def torchrun_command(nproc: int, module_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", *module_args]


def relaunch(nproc: int, module_args: list[str]) -> int:
    """Run `python -m <module_args>` on `nproc` local ranks and return torchrun's exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(nproc, module_args), env=env)
