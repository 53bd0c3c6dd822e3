"""Where a stage's `medmegatron ...` command runs: this machine, or Slurm through NeMo-Run.

Local: a child process (the command itself re-executes under torchrun when it needs several
ranks, exactly as when typed by hand). It is tied to the pipeline's life (Linux
PR_SET_PDEATHSIG): killing the pipeline sends the trainer SIGTERM, which checkpoints and exits,
instead of leaving an orphan that a rerun would race.

Slurm: the recipes' own NeMo-Run executor factory (`recipes/launch.py::slurm_executor`: pyxis
container, NCCL settings, torchrun per node), one job per stage, waited for, so the next stage
sees finished outputs. `dryrun: true` writes the sbatch scripts and submits nothing.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

from medmegatron.errors import UserFacingError
from medmegatron.pipeline.spec import ExecutorSpec

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: Ctrl-C still reaches the whole process group
        pass


def command_line(argv: list[str]) -> str:
    import shlex

    return "medmegatron " + shlex.join(argv)


class LocalExecutor:
    def run(self, stage: str, argv: list[str], nproc: int) -> int:
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        return subprocess.call([sys.executable, "-m", "medmegatron", *argv], preexec_fn=preexec)


class SlurmExecutor:
    def __init__(self, spec: ExecutorSpec, job_name: str):
        self.spec, self.job_name = spec, job_name

    def executor(self, nproc: int):
        import fiddle as fdl

        from recipes.launch import slurm_executor

        s = self.spec
        gpus = min(nproc, s.gpus_per_node) if nproc > 1 else 1
        nodes = max(1, nproc // s.gpus_per_node) if nproc > 1 else 1
        kwargs = dict(account=s.account, partition=s.partition, nodes=nodes, gpus_per_node=gpus, time=s.time,
                      container_mounts=s.container_mounts or None)
        if s.container_image:
            kwargs["container_image"] = s.container_image
        if s.job_dir:
            kwargs["job_dir"] = s.job_dir
        executor = fdl.build(slurm_executor(**kwargs))
        if nproc <= 1:  # a single process: no torchrun, one task
            executor.launcher = None
            executor.ntasks_per_node = 1
        return executor

    def run(self, stage: str, argv: list[str], nproc: int) -> int:
        import nemo_run as run

        script = run.Script(path="medmegatron", args=list(argv), entrypoint="python", m=True)
        with run.Experiment(f"{self.job_name}-{stage}") as exp:
            exp.add(script, executor=self.executor(nproc), name=stage)
            if self.spec.dryrun:
                exp.dryrun()
                return 0
            exp.run(detach=False, tail_logs=True)
            states = [str(job["status"]).upper() for job in (exp.status(return_dict=True) or {}).values()]
        if not states or any("SUCCEEDED" not in s for s in states):
            raise UserFacingError(f"stage {stage}: Slurm job ended as {states}; see `nemo experiment logs`")
        return 0


def make_executor(spec: ExecutorSpec, pipeline_name: str):
    return LocalExecutor() if spec.kind == "local" else SlurmExecutor(spec, pipeline_name)
