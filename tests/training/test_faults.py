"""Runs that go wrong: SIGKILL then resume, SIGTERM (preemption), non-finite losses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, tiny_overrides

from medmegatron.config import load_config
from medmegatron.training import pretrain
from medmegatron.training.checkpointing import latest_checkpoint
from medmegatron.training.metrics import read_metrics
from medmegatron.training.step import TrainingDiverged

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cmd(prefix: str, run_dir: Path, **extra) -> list[str]:
    overrides = tiny_overrides(prefix, run_dir, **{"checkpoint.resume": True, "logging.plots": False, **extra})
    return [sys.executable, "-m", "medmegatron", "train", *overrides]


def _wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"training ended early: {proc.stderr.read()[-3000:]}"
        path = run_dir / "metrics.jsonl"
        if path.exists() and any(r.get("iteration", 0) >= step and "loss" in r for r in read_metrics(run_dir)):
            return
        time.sleep(0.2)
    raise AssertionError(f"step {step} not reached in {timeout}s")


def _losses_by_step(run_dir: Path) -> dict[int, float]:
    return {r["iteration"]: r["loss"] for r in read_metrics(run_dir) if "loss" in r}  # last one wins


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(pubmed_prefix, tmp_path):
    settings = {"schedule.train_iters": 8, "checkpoint.save_interval": 2}
    straight = subprocess.run(_cmd(pubmed_prefix, tmp_path / "straight", **settings), env=ENV, cwd=REPO,
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(pubmed_prefix, killed_dir, **settings), env=ENV, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_step(killed_dir, 5, proc)
    finally:
        proc.kill()
        proc.wait()
    assert latest_checkpoint(killed_dir / "checkpoints").name in ("iter_0000004", "iter_0000006")

    resumed = subprocess.run(_cmd(pubmed_prefix, killed_dir, **settings), env=ENV, cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _losses_by_step(killed_dir) == _losses_by_step(tmp_path / "straight")
    assert len(_losses_by_step(killed_dir)) == 8


def test_sigterm_checkpoints_and_exits_cleanly(pubmed_prefix, tmp_path):
    run_dir = tmp_path / "preempted"
    proc = subprocess.Popen(_cmd(pubmed_prefix, run_dir, **{"schedule.train_iters": 500}), env=ENV,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_step(run_dir, 2, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received" in out + err
    last_step = max(_losses_by_step(run_dir))
    assert latest_checkpoint(run_dir / "checkpoints").name == f"iter_{last_step:07d}"
    assert last_step < 500


def test_non_finite_loss_aborts_with_the_step_named(pubmed_prefix, tmp_path):
    cfg = load_config(None, tiny_overrides(pubmed_prefix, tmp_path / "abort", **{
        "optimizer.lr": 1e30, "optimizer.clip_grad": 0.0, "schedule.lr_warmup_iters": 0,
        "monitor.nan_policy": "abort"}))
    with pytest.raises(TrainingDiverged, match=r"non-finite .* at step \d+.*monitor.nan_policy"):
        pretrain(cfg)


def test_non_finite_steps_are_skipped_then_abort_past_the_limit(pubmed_prefix, tmp_path):
    run_dir = tmp_path / "skip"
    cfg = load_config(None, tiny_overrides(pubmed_prefix, run_dir, **{
        "optimizer.lr": 1e30, "optimizer.clip_grad": 0.0, "schedule.lr_warmup_iters": 0,
        "schedule.train_iters": 8, "monitor.nan_policy": "skip", "monitor.max_skipped_steps": 2}))
    with pytest.raises(TrainingDiverged, match="3 steps skipped"):
        pretrain(cfg)
    records = read_metrics(run_dir)
    skipped = [r["iteration"] for r in records if r.get("skipped")]
    events = [r for r in records if r.get("event") == "skipped_step"]
    assert len(skipped) == 3 and len(events) == 3
    assert skipped == list(range(skipped[0], skipped[0] + 3))
