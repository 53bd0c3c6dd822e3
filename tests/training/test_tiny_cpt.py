"""Tiny continual pretraining in one process: the loss goes down, checkpoints load and resume exactly."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import tiny_overrides

from medmegatron.config import load_config
from medmegatron.training import pretrain
from medmegatron.training.checkpointing import latest_checkpoint
from medmegatron.training.metrics import read_metrics


def test_loss_decreases_and_checkpoints_are_written(pubmed_prefix, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(None, tiny_overrides(pubmed_prefix, run, **{
        "schedule.train_iters": 12, "checkpoint.save_interval": 6, "optimizer.lr": 3e-3}))
    result = pretrain(cfg)

    assert len(result.losses) == 12
    assert sum(result.losses[-3:]) / 3 < sum(result.losses[:3]) / 3 - 0.5
    latest = latest_checkpoint(run / "checkpoints")
    assert latest is not None and latest.name == "iter_0000012"
    assert (run / "checkpoints" / "iter_0000006" / "metadata.json").exists()
    assert not list((run / "checkpoints").glob("*.tmp")), "no half-written checkpoint left behind"
    meta = json.loads((latest / "medmegatron.json").read_text())
    assert meta["iteration"] == 12 and meta["config"]["model"]["name"] == "tiny-llama"

    records = read_metrics(run)
    assert [r["iteration"] for r in records if "loss" in r] == list(range(1, 13))
    assert any("valid_loss" in r for r in records)
    effective = json.loads((run / "effective_hyperparameters.json").read_text())
    decays = {g["weight_decay"] for g in effective["param_groups"]}
    assert 0.1 in decays, f"configured weight decay 0.1 not applied: {decays}"
    assert effective["schedule"]["max_lr"] == 3e-3


def test_resume_continues_the_uninterrupted_run_exactly(pubmed_prefix, tmp_path):
    """Weights, optimizer moments, LR schedule and data position all come back from the checkpoint."""
    common = {"schedule.lr_decay_iters": 8, "checkpoint.resume": True}
    straight = pretrain(load_config(None, tiny_overrides(
        pubmed_prefix, tmp_path / "straight", **common, **{"schedule.train_iters": 8})))

    interrupted = tmp_path / "interrupted"
    first = pretrain(load_config(None, tiny_overrides(
        pubmed_prefix, interrupted, **common, **{"schedule.train_iters": 4})))
    resumed = pretrain(load_config(None, tiny_overrides(
        pubmed_prefix, interrupted, **common, **{"schedule.train_iters": 8})))

    assert resumed.start_iteration == 4
    assert first.losses + resumed.losses == straight.losses
    lrs = {r["iteration"]: r["lr"] for r in read_metrics(interrupted) if "lr" in r}
    assert lrs == {r["iteration"]: r["lr"] for r in read_metrics(tmp_path / "straight") if "lr" in r}


def test_init_from_loads_weights_but_not_optimizer_or_schedule(pubmed_prefix, tmp_path):
    source = pretrain(load_config(None, tiny_overrides(pubmed_prefix, tmp_path / "a", **{
        "schedule.train_iters": 3})))
    again = pretrain(load_config(None, tiny_overrides(pubmed_prefix, tmp_path / "b", **{
        "schedule.train_iters": 3, "checkpoint.init_from": str(tmp_path / "a")})))
    assert again.start_iteration == 0
    # Starting from trained weights, the first loss is below the random-init first loss.
    assert again.losses[0] < source.losses[0] - 0.1
    first_lr = next(r["lr"] for r in read_metrics(Path(tmp_path / "b")) if "lr" in r)
    assert first_lr < 1e-3, "fresh schedule: warmup starts again from the bottom"


def test_init_from_a_checkpoint_of_another_architecture_is_refused_by_field(pubmed_prefix, tmp_path):
    import pytest

    from medmegatron.errors import UserFacingError

    pretrain(load_config(None, tiny_overrides(pubmed_prefix, tmp_path / "a", **{"schedule.train_iters": 1,
                                                                                  "schedule.lr_warmup_iters": 0})))
    cfg = load_config(None, tiny_overrides(pubmed_prefix, tmp_path / "b", **{
        "checkpoint.init_from": str(tmp_path / "a"), "model.num_layers": 2}))
    with pytest.raises(UserFacingError, match="model.num_layers: checkpoint 4, config 2"):
        pretrain(cfg)
