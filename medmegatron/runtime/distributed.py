"""Process-group set-up from torchrun's environment: NCCL on GPUs, gloo on CPU.

One call, `init_distributed`, creates the default group (if the launcher has not) and
megatron-core's model-parallel groups for a `ParallelConfig`. Without torchrun (RANK unset) it
makes a world of one on a free loopback port, so `medmegatron train` works as a plain command.
"""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from medmegatron.config import ParallelConfig
from medmegatron.runtime import cpu_mode, megatron_compat


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    backend: str
    cpu: bool


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def init_process_group(timeout_minutes: int = 30) -> DistEnv:
    """Create the default process group from torchrun's variables (or a world of one)."""
    cpu = cpu_mode.activate()
    megatron_compat.apply()
    backend = "gloo" if cpu else "nccl"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not cpu:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
        else:
            dist.init_process_group(
                backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1,
                timeout=timedelta(minutes=timeout_minutes),
            )
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, backend, cpu)


def init_model_parallel(parallel: ParallelConfig, seed: int) -> None:
    """(Re)create megatron-core's TP/PP/CP/EP/DP groups and seed every RNG stream.

    Seeds follow Megatron-LM: the same base seed on all DP and TP ranks (so CPU-initialised
    weights agree), offset per pipeline stage, plus megatron's per-TP-rank CUDA RNG tracker.
    """
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=parallel.tensor_parallel,
        pipeline_model_parallel_size=parallel.pipeline_parallel,
        virtual_pipeline_model_parallel_size=parallel.virtual_pipeline_parallel,
        context_parallel_size=parallel.context_parallel,
        expert_model_parallel_size=parallel.expert_parallel,
        expert_tensor_parallel_size=parallel.expert_tensor_parallel,
    )
    stage_seed = seed + 100 * parallel_state.get_pipeline_model_parallel_rank()
    random.seed(stage_seed)
    np.random.seed(stage_seed)
    torch.manual_seed(stage_seed)
    model_parallel_cuda_manual_seed(stage_seed, force_reset_rng=True)


def destroy() -> None:
    """Tear down model-parallel groups (keeps the default group so a process can rebuild)."""
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
