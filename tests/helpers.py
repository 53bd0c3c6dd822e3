"""Helpers for tests: tiny run overrides and a torchrun launcher for multi-process tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKERS = Path(__file__).parent / "workers"


def tiny_overrides(prefix: str, run_dir: Path, **extra) -> list[str]:
    """A tiny-llama run small enough for CPU tests (seq 64, global batch 8)."""
    base = {
        "model": "tiny-llama", "run_dir": str(run_dir), "data.paths": f"[{prefix}]",
        "data.seq_length": 64, "schedule.micro_batch_size": 2, "schedule.global_batch_size": 8,
        "schedule.train_iters": 5, "optimizer.lr": 1e-3, "optimizer.min_lr": 1e-4,
        "schedule.lr_warmup_iters": 1, "logging.progress_bar": False, "logging.tensorboard": False,
        "checkpoint.resume": False, "eval_iters": 1,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def run_torchrun(nproc: int, script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run tests/workers/<script> on `nproc` gloo ranks; fail the test with its output if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", str(WORKERS / script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(f"{script} on {nproc} ranks exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-8000:]}")
    return proc


def run_layouts(nproc: int, runs: dict[str, list[str]], out: Path) -> dict[str, list[float]]:
    """Train each named override list in turn inside one torchrun world; return losses by name."""
    spec = out.with_suffix(".spec.json")
    spec.write_text(json.dumps(runs))
    run_torchrun(nproc, "train_layouts.py", str(spec), str(out))
    return json.loads(out.read_text())
